// @ts-check
/**
 * Lazy subscriptions for the live grid: a tile's video is received only while the tile is on
 * screen. A 50-candidate grid then pulls a dozen thumbnails instead of fifty, and scrolling
 * moves the load with the view.
 *
 * Visibility comes from an IntersectionObserver (injectable, so the logic is tested with a
 * fake). A tile that leaves the screen is closed only after `closeDelayMs`: scrolling past,
 * or a re-sort that moves a tile for a moment, does not tear down and renegotiate its video.
 */

/**
 * @typedef {{close(): void}} Closable what `open` returns: the running subscription
 * @typedef {{target: Element, isIntersecting: boolean}} VisibilityEntry
 * @typedef {{observe(el: Element): void, unobserve(el: Element): void, disconnect(): void}} ObserverLike
 * @typedef {(callback: (entries: VisibilityEntry[]) => void) => ObserverLike} ObserverFactory
 */

/** The browser's observer; a margin opens tiles just before they scroll into view. */
/** @type {ObserverFactory} */
const viewportObserver = (callback) => new IntersectionObserver(callback, { rootMargin: "150px 0px" });

export class LazySubscriptions {
  /**
   * @param {object} options
   * @param {(key: string) => Closable} options.open starts receiving for `key`
   * @param {ObserverFactory} [options.createObserver]
   * @param {number} [options.closeDelayMs] how long a tile stays open off screen (default 2 s)
   * @param {import("./hub-client.js").Timers} [options.timers]
   */
  constructor({ open, createObserver = viewportObserver, closeDelayMs = 2_000, timers }) {
    this.openFn = open;
    this.closeDelayMs = closeDelayMs;
    this.timers = timers || {
      setTimeout: (/** @type {() => void} */ fn, /** @type {number} */ ms) => globalThis.setTimeout(fn, ms),
      clearTimeout: (/** @type {any} */ t) => globalThis.clearTimeout(t),
    };
    /** @type {Map<string, Element>} */
    this.elements = new Map();
    /** @type {Map<Element, string>} */
    this.keys = new Map();
    /** @type {Map<string, Closable>} */
    this.running = new Map();
    /** @type {Map<string, unknown>} pending closes of tiles that left the screen */
    this.closing = new Map();
    this.observer = createObserver((entries) => this.onVisibility(entries));
  }

  /**
   * Starts watching a tile. It opens once the observer reports it on screen.
   * @param {string} key
   * @param {Element} element
   */
  track(key, element) {
    const old = this.elements.get(key);
    if (old === element) return;
    if (old) {
      this.observer.unobserve(old);
      this.keys.delete(old);
    }
    this.elements.set(key, element);
    this.keys.set(element, key);
    this.observer.observe(element);
  }

  /**
   * Stops watching a tile and closes its subscription now (the tile was removed, or its
   * session ended and has nothing more to show).
   * @param {string} key
   */
  untrack(key) {
    const el = this.elements.get(key);
    if (el) {
      this.observer.unobserve(el);
      this.keys.delete(el);
      this.elements.delete(key);
    }
    this.close(key);
  }

  /** @param {string} key @returns {boolean} whether `key` is receiving now */
  isOpen(key) {
    return this.running.has(key);
  }

  /** @returns {string[]} the keys receiving now */
  openKeys() {
    return [...this.running.keys()];
  }

  /** Closes everything and stops observing (the view is going away). */
  dispose() {
    this.observer.disconnect();
    for (const key of [...this.running.keys()]) this.close(key);
    this.elements.clear();
    this.keys.clear();
  }

  /**
   * @private
   * @param {VisibilityEntry[]} entries
   */
  onVisibility(entries) {
    for (const { target, isIntersecting } of entries) {
      const key = this.keys.get(target);
      if (key === undefined) continue;
      if (isIntersecting) {
        this.cancelClose(key);
        if (!this.running.has(key)) this.running.set(key, this.openFn(key));
      } else if (this.running.has(key) && !this.closing.has(key)) {
        this.closing.set(
          key,
          this.timers.setTimeout(() => {
            this.closing.delete(key);
            this.close(key);
          }, this.closeDelayMs),
        );
      }
    }
  }

  /**
   * @private
   * @param {string} key
   */
  close(key) {
    this.cancelClose(key);
    const sub = this.running.get(key);
    this.running.delete(key);
    sub?.close();
  }

  /**
   * @private
   * @param {string} key
   */
  cancelClose(key) {
    const t = this.closing.get(key);
    if (t !== undefined) this.timers.clearTimeout(t);
    this.closing.delete(key);
  }
}
