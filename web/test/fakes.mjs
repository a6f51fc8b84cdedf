// Test doubles shared by the unit tests: a fake clock with timers, an in-memory Storage, and a
// scriptable WebSocket. Not a test file itself.
import { setImmediate as tick } from "node:timers/promises";

/** Lets every pending promise callback run (the code under test awaits its transport). */
export async function settle() {
  for (let i = 0; i < 5; i++) await tick();
}

/**
 * A clock whose time moves only when the test says so. `setTimeout`/`clearTimeout` are the
 * Timers the modules take; `advance(ms)` runs the timers that fall due, in order, letting
 * promises settle between them.
 */
export class FakeClock {
  constructor(start = 1_000_000) {
    this.t = start;
    this.timers = [];
    this.seq = 0;
    this.now = () => this.t;
    this.setTimeout = (fn, ms) => {
      const id = ++this.seq;
      this.timers.push({ id, at: this.t + Math.max(0, ms), fn });
      return id;
    };
    this.clearTimeout = (id) => {
      this.timers = this.timers.filter((t) => t.id !== id);
    };
  }

  async advance(ms) {
    const end = this.t + ms;
    for (;;) {
      await settle();
      const due = this.timers
        .filter((t) => t.at <= end)
        .sort((a, b) => a.at - b.at || a.id - b.id)[0];
      if (!due) break;
      this.timers = this.timers.filter((t) => t !== due);
      this.t = due.at;
      due.fn();
    }
    this.t = end;
    await settle();
  }
}

export class FakeStorage {
  constructor() {
    this.map = new Map();
  }
  getItem(k) {
    return this.map.has(k) ? this.map.get(k) : null;
  }
  setItem(k, v) {
    this.map.set(k, String(v));
  }
  removeItem(k) {
    this.map.delete(k);
  }
}

/** A WebSocket the test drives: `open()`, `receive(msg)`, `serverClose(code)`. */
export class FakeWebSocket {
  static instances = [];
  constructor(url) {
    this.url = url;
    this.sent = [];
    this.closedWith = null;
    FakeWebSocket.instances.push(this);
  }
  static reset() {
    FakeWebSocket.instances = [];
  }
  static last() {
    return FakeWebSocket.instances[FakeWebSocket.instances.length - 1];
  }
  send(text) {
    this.sent.push(JSON.parse(text));
  }
  close(code) {
    this.closedWith = code;
  }
  open() {
    this.onopen?.();
  }
  receive(msg) {
    this.onmessage?.({ data: JSON.stringify(msg) });
  }
  serverClose(code) {
    this.onclose?.({ code });
  }
  types() {
    return this.sent.map((m) => m.type);
  }
}
