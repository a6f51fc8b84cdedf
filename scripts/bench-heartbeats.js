'use strict';
// Candidates' laptops heartbeating in their own session rooms, against any server speaking the
// contract (the Rust hub or the Node baseline): each heartbeat is acknowledged and, on both
// servers, written to Redis as the session's liveness. Measures the server's CPU per heartbeat
// over the steady phase only (logins and session starts excluded), read from /proc/<pid>/stat.
//
//   NODE_PATH=<dir with ws> node scripts/bench-heartbeats.js URL EXAM_ID SERVER_PID \
//     [--first 1] [--count 200] [--per-second 10] [--duration 10] [--password Passw0rd!]
//
// Prints one JSON line: {sockets, heartbeats, durationS, cpuUsPerHeartbeat, p50Ms, p99Ms}.
const fs = require('node:fs');
const WebSocket = require('ws');

const [url, examId, pidArg] = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = process.argv.indexOf(name);
  return i === -1 ? dflt : process.argv[i + 1];
};
const FIRST = Number(opt('--first', '1'));
const COUNT = Number(opt('--count', '200'));
const PER_SECOND = Number(opt('--per-second', '10'));
const DURATION = Number(opt('--duration', '10'));
const PASSWORD = opt('--password', 'Passw0rd!');
if (!url || !examId || !pidArg) {
  console.error('usage: bench-heartbeats.js URL EXAM_ID SERVER_PID [--count N] ...');
  process.exit(2);
}

/** @param {string} path @param {string|null} token @param {object} body */
async function post(path, token, body) {
  const res = await fetch(`${url}/api/v1${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body),
  });
  const json = await res.json();
  if (res.status >= 300) throw new Error(`${path} → ${res.status} ${JSON.stringify(json)}`);
  return json;
}

/** CPU ticks (user + system) of a process. @param {string} pid */
function ticks(pid) {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

/** Opens a socket, authenticates and joins `room`. */
function open(token, room) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/ws`, { origin: url });
    const timer = setTimeout(() => reject(new Error('socket set-up timed out')), 10000);
    ws.once('error', reject);
    ws.on('open', () => ws.send(JSON.stringify({ type: 'auth', token })));
    ws.on('message', function first(data) {
      const m = JSON.parse(data);
      if (m.type === 'authed') ws.send(JSON.stringify({ type: 'join', roomId: room }));
      else if (m.type === 'joined') {
        clearTimeout(timer);
        ws.off('message', first);
        resolve(ws);
      } else if (m.type === 'error') reject(new Error(JSON.stringify(m)));
    });
  });
}

async function main() {
  const sockets = [];
  for (let i = 0; i < COUNT; i++) {
    const email = `candidate${FIRST + i}@example.test`;
    const { accessToken } = await post('/auth/login', null, { email, password: PASSWORD });
    const s = await post(`/exams/${examId}/sessions`, accessToken, { deviceFingerprint: `hb-${i}` });
    sockets.push(await open(accessToken, s.webrtcRoomId));
  }
  process.stderr.write(`${sockets.length} candidates in their rooms; heartbeating ${PER_SECOND}/s each for ${DURATION}s\n`);

  const latencies = [];
  let measuring = false;
  const gap = 1000 / PER_SECOND;
  const timers = sockets.map((ws, i) => {
    const sent = [];
    ws.on('message', (data) => {
      const m = JSON.parse(data);
      if (m.type === 'heartbeat-ack' && sent.length) {
        const t0 = sent.shift();
        if (measuring) latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
      }
    });
    const beat = () => {
      sent.push(process.hrtime.bigint());
      ws.send('{"type":"heartbeat"}');
    };
    // Spread the sockets' phases over one gap.
    return setTimeout(() => {
      beat();
      timers[i] = setInterval(beat, gap);
    }, (gap * i) / sockets.length);
  });
  await new Promise((r) => setTimeout(r, 2000)); // warm-up
  measuring = true;
  const before = ticks(pidArg);
  const started = process.hrtime.bigint();
  await new Promise((r) => setTimeout(r, DURATION * 1000));
  measuring = false;
  const after = ticks(pidArg);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  timers.forEach((t) => clearInterval(t));
  latencies.sort((a, b) => a - b);
  const q = (p) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))];
  const hz = 100; // /proc/<pid>/stat counts in USER_HZ, 100 on Linux
  const cpuUs = ((after - before) / hz) * 1e6;
  console.log(JSON.stringify({
    sockets: sockets.length,
    heartbeats: latencies.length,
    durationS: seconds,
    cpuUsPerHeartbeat: latencies.length ? cpuUs / latencies.length : null,
    p50Ms: q(0.5),
    p99Ms: q(0.99),
  }));
  sockets.forEach((ws) => ws.close(1000));
  setTimeout(() => process.exit(0), 200);
}

main().catch((e) => {
  console.error(`bench-heartbeats: ${e.message}`);
  process.exit(1);
});
