// The microphone level meter's arithmetic (check-level.js): RMS, decibels, the bar's scale and
// its fall-back, and when the check says "we can hear you".
import { test } from "node:test";
import assert from "node:assert/strict";
import { rms, toDbfs, barFraction, nextBarHeight, isHeard, FLOOR_DB, HEARD_DB } from "../check-level.js";

/** `n` samples of a sine wave with the given peak amplitude. */
const sine = (amplitude, n = 1024) => Float32Array.from({ length: n }, (_, i) => amplitude * Math.sin((2 * Math.PI * 8 * i) / n));

test("rms: silence is 0, a full-scale square wave is 1, a sine is its peak / √2", () => {
  assert.equal(rms(new Float32Array(512)), 0);
  assert.equal(rms([]), 0, "an empty block is silence, not NaN");
  assert.equal(rms([1, -1, 1, -1]), 1);
  assert.ok(Math.abs(rms(sine(0.5)) - 0.5 / Math.SQRT2) < 1e-6);
});

test("toDbfs: full scale is 0 dB, halving the level takes ~6 dB off, silence is -Infinity", () => {
  assert.equal(toDbfs(1), 0);
  assert.ok(Math.abs(toDbfs(0.5) - -6.0206) < 1e-3);
  assert.ok(Math.abs(toDbfs(0.001) - -60) < 1e-9);
  assert.equal(toDbfs(0), -Infinity);
});

test("barFraction is linear in decibels from the floor (empty) to 0 dB (full), clamped", () => {
  assert.equal(barFraction(FLOOR_DB), 0);
  assert.equal(barFraction(-Infinity), 0);
  assert.equal(barFraction(-80), 0, "below the floor: empty");
  assert.equal(barFraction(-30), 0.5, "halfway in dB is half the bar");
  assert.equal(barFraction(0), 1);
  assert.equal(barFraction(6), 1, "clipping does not overflow the bar");
  assert.equal(barFraction(NaN), 0);
  assert.equal(barFraction(-20, -40), 0.5, "another floor");
});

test("the bar jumps up at once and falls back at the set rate, never below the new reading", () => {
  assert.equal(nextBarHeight(0.1, 0.8, 16), 0.8, "a louder reading shows at once");
  // 1.5 bar per second: 100 ms takes 0.15 off.
  assert.ok(Math.abs(nextBarHeight(0.8, 0, 100) - 0.65) < 1e-9);
  assert.equal(nextBarHeight(0.8, 0.7, 100), 0.7, "stops at the current reading");
  assert.equal(nextBarHeight(0.8, 0, 10_000), 0, "empties after a long pause");
  assert.equal(nextBarHeight(0.8, 0, -5), 0.8, "a clock going backwards does not move it");
  // Frame by frame at 60 fps a full bar is empty after ~0.67 s, not at once.
  let shown = 1;
  let frames = 0;
  while (shown > 0) {
    shown = nextBarHeight(shown, 0, 1000 / 60);
    frames += 1;
  }
  assert.ok(frames >= 39 && frames <= 41, `${frames} frames`);
});

test("isHeard: speech-like levels are heard, room noise is not", () => {
  assert.equal(isHeard(toDbfs(rms(sine(0.1)))), true, "a -23 dBFS voice");
  assert.equal(isHeard(HEARD_DB), true);
  assert.equal(isHeard(toDbfs(rms(sine(0.003)))), false, "a -53 dBFS hum");
  assert.equal(isHeard(-Infinity), false);
});
