// @ts-check
/**
 * The microphone level meter's arithmetic, kept apart from Web Audio so it runs in Node's
 * test runner. The system check reads the microphone's waveform from an AnalyserNode
 * (`getFloatTimeDomainData`: samples in -1..1) and turns it into a bar that moves the way
 * people expect: up at once when they speak, down gently afterwards.
 */

/** The quietest level the bar shows: below it the bar is empty (room noise, not a voice). */
export const FLOOR_DB = -60;
/** A level at or above this is sound worth saying "we hear you" for (speech is about -30). */
export const HEARD_DB = -45;
/** How fast the bar falls back, in bar fractions per second (a full bar empties in ~0.7 s). */
export const FALL_PER_SECOND = 1.5;

/**
 * Root mean square of a block of samples: the block's loudness as one number.
 * @param {ArrayLike<number>} samples in -1..1
 * @returns {number} 0..1 (0 for an empty block)
 */
export function rms(samples) {
  if (samples.length === 0) return 0;
  let sum = 0;
  for (let i = 0; i < samples.length; i++) sum += samples[i] * samples[i];
  return Math.sqrt(sum / samples.length);
}

/**
 * Decibels relative to full scale. Silence has no finite value; it gets -Infinity, which the
 * other functions treat as "below the floor".
 * @param {number} level an RMS in 0..1
 * @returns {number} dBFS, at most 0 for in-range input
 */
export function toDbfs(level) {
  return level > 0 ? 20 * Math.log10(level) : -Infinity;
}

/**
 * Where a level falls on the bar: linear in decibels between {@link FLOOR_DB} and 0, because
 * loudness is heard logarithmically (a linear RMS bar would barely move for normal speech).
 * @param {number} db dBFS
 * @param {number} [floorDb]
 * @returns {number} 0..1
 */
export function barFraction(db, floorDb = FLOOR_DB) {
  if (!(db > floorDb)) return 0;
  return Math.min(1, (db - floorDb) / -floorDb);
}

/**
 * The bar's next height: it jumps up to a louder reading at once, and falls no faster than
 * {@link FALL_PER_SECOND}, so short syllables stay visible instead of flickering.
 * @param {number} shown the height shown now, 0..1
 * @param {number} measured the new reading, 0..1
 * @param {number} elapsedMs since `shown` was drawn
 * @param {number} [fallPerSecond]
 * @returns {number} 0..1
 */
export function nextBarHeight(shown, measured, elapsedMs, fallPerSecond = FALL_PER_SECOND) {
  if (measured >= shown) return measured;
  return Math.max(measured, shown - (fallPerSecond * Math.max(0, elapsedMs)) / 1000);
}

/**
 * @param {number} db dBFS
 * @returns {boolean} whether the microphone picked up sound clearly above room noise
 */
export function isHeard(db) {
  return db >= HEARD_DB;
}
