#!/usr/bin/env node
// End-to-end test of the custody wall in Debian's Chromium (headless, via playwright-core).
//
//   node tests/browser/wall.mjs --url https://127.0.0.1:PORT --token TOKEN --out DIR
//        [--stored-device bwc-1] [--timeout 60] [--max-latency-ms N] [--latency-samples 10]
//
// Signs in, watches the first live feed through hls.js until frames are really decoded,
// measures glass-to-glass latency from the barcode the test camera burns into each
// frame, then searches stored recordings and plays the first result. Prints exactly one
// line of JSON on stdout: {"ok":true,...} or {"ok":false,"error":...,"step":...} (exit 1).
// Diagnostics go to stderr.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

// ------------------------------------------------------------------ arguments

function parseArgs(argv) {
  const opts = { timeout: 60, storedDevice: null, maxLatencyMs: null, latencySamples: 10, latencySeconds: 5, chromium: '/usr/bin/chromium' };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const eq = a.indexOf('=');
    const name = eq > 0 ? a.slice(0, eq) : a;
    const next = () => (eq > 0 ? a.slice(eq + 1) : argv[++i]);
    switch (name) {
      case '--url': opts.url = next(); break;
      case '--token': opts.token = next(); break;
      case '--out': opts.out = next(); break;
      case '--stored-device': opts.storedDevice = next(); break;
      case '--timeout': opts.timeout = Number(next()); break;
      case '--max-latency-ms': opts.maxLatencyMs = Number(next()); break;
      case '--latency-samples': opts.latencySamples = Number(next()); break;
      case '--latency-seconds': opts.latencySeconds = Number(next()); break;
      case '--chromium': opts.chromium = next(); break;
      default: throw new Error(`unknown argument ${a}`);
    }
  }
  if (!opts.url) throw new Error('--url is required');
  if (!opts.token) throw new Error('--token is required');
  if (!opts.out) throw new Error('--out is required');
  if (!(opts.timeout > 0)) throw new Error('--timeout must be a positive number of seconds');
  opts.url = opts.url.replace(/\/+$/, '');
  return opts;
}

// ------------------------------------------------------------------ output

let done = false;
function finish(obj, code) {
  if (done) return;
  done = true;
  process.stdout.write(`${JSON.stringify(obj)}\n`);
  process.exitCode = code;
}

const log = (...a) => console.error('[wall]', ...a);

class StepError extends Error {
  constructor(step, message, extra) {
    super(message);
    this.step = step;
    this.extra = extra;
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Polls `probe` until it returns a truthy value or the step times out.
async function until(step, timeoutMs, probe, describe) {
  const t0 = Date.now();
  let last;
  for (;;) {
    last = await probe();
    if (last && last.ok) return last;
    if (Date.now() - t0 > timeoutMs) {
      const why = describe ? describe(last) : JSON.stringify(last);
      throw new StepError(step, `timed out after ${Math.round(timeoutMs / 1000)} s: ${why}`);
    }
    await sleep(250);
  }
}

// ------------------------------------------------------------------ in-page helpers

// Reads the state of the player (tile + entry in window.__custodyPlayers) for `kind`/`id`.
function pagePlayerState([kind, id]) {
  const tile = Array.from(document.querySelectorAll('.tile')).find((t) => t.dataset.kind === kind && t.dataset.id === id);
  const entry = (window.__custodyPlayers || []).find((p) => p.kind === kind && p.id === id);
  const out = { tile: !!tile, entry: !!entry, hls: !!(entry && entry.hls), t: Date.now() };
  if (tile) {
    const ov = tile.querySelector('.tile-overlay:not([hidden])');
    out.overlay = ov ? ov.textContent : null;
    const un = tile.querySelector('.tile-unplayable');
    out.unplayable = un ? un.textContent : null;
  }
  if (entry) {
    const v = entry.video;
    const q = v.getVideoPlaybackQuality ? v.getVideoPlaybackQuality() : null;
    out.frames = q ? q.totalVideoFrames : 0;
    out.dropped = q ? q.droppedVideoFrames : 0;
    out.width = v.videoWidth;
    out.height = v.videoHeight;
    out.currentTime = v.currentTime;
    out.paused = v.paused;
    out.ended = v.ended;
    out.readyState = v.readyState;
    out.sameVideo = !!tile && tile.contains(v);
    out.errors = (entry.errors || []).slice(-3).map((e) => `${e.details}${e.code ? `(${e.code})` : ''}${e.fatal ? '!' : ''}`);
    out.mediaError = v.error ? `${v.error.code} ${v.error.message || ''}` : null;
    if (entry.hls) {
      const h = entry.hls;
      out.hlsLevel = h.currentLevel;
      out.hlsLatency = Number.isFinite(h.latency) ? h.latency : null;
      out.lowLatencyMode = !!(h.config && h.config.lowLatencyMode);
    }
  }
  return out;
}

// Decodes the 32-bit barcode (bit i MSB-first: 16×16 block at x = 8 + 20·i, y = 8 in a
// 640×360 frame) from the frame being shown, on the next presented frame if possible.
function pageReadBarcode([kind, id]) {
  const entry = (window.__custodyPlayers || []).find((p) => p.kind === kind && p.id === id);
  if (!entry) return Promise.resolve({ error: 'no player' });
  const v = entry.video;
  const read = (displayOffsetMs) => {
    const w = v.videoWidth;
    const h = v.videoHeight;
    if (!w || !h) return { error: 'no picture' };
    const c = window.__custodyBarcodeCanvas || (window.__custodyBarcodeCanvas = document.createElement('canvas'));
    if (c.width !== w) c.width = w;
    if (c.height !== h) c.height = h;
    const ctx = c.getContext('2d', { willReadFrequently: true });
    ctx.drawImage(v, 0, 0, w, h);
    const now = Date.now() + displayOffsetMs;
    const sx = w / 640;
    const sy = h / 360;
    let value = 0;
    let margin = 255;
    const lumas = [];
    for (let i = 0; i < 32; i++) {
      const cx = Math.round((8 + 20 * i + 8) * sx);
      const cy = Math.round((8 + 8) * sy);
      // Centre pixel, averaged with its close neighbours to ride out compression noise.
      const r = Math.max(0, Math.min(2, Math.floor(4 * Math.min(sx, sy)) - 1));
      const d = ctx.getImageData(cx - r, cy - r, 2 * r + 1, 2 * r + 1).data;
      let y = 0;
      for (let k = 0; k < d.length; k += 4) y += 0.299 * d[k] + 0.587 * d[k + 1] + 0.114 * d[k + 2];
      y /= d.length / 4;
      lumas.push(Math.round(y));
      margin = Math.min(margin, Math.abs(y - 128));
      value = value * 2 + (y >= 128 ? 1 : 0);
    }
    const nowMod = now % 4294967296;
    let diff = nowMod - value;
    if (diff > 2147483648) diff -= 4294967296;
    if (diff < -2147483648) diff += 4294967296;
    return { value, now, nowMod, latency: diff, margin: Math.round(margin), lumas, currentTime: v.currentTime };
  };
  if (typeof v.requestVideoFrameCallback !== 'function') return Promise.resolve(read(0));
  return new Promise((resolve) => {
    let settled = false;
    const timer = setTimeout(() => {
      if (settled) return;
      settled = true;
      resolve(read(0));
    }, 1000);
    v.requestVideoFrameCallback((nowTs, meta) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      // Latency to the moment the frame is expected on screen.
      const offset = meta && Number.isFinite(meta.expectedDisplayTime) ? Math.max(0, meta.expectedDisplayTime - performance.now()) : 0;
      resolve(read(offset));
    });
  });
}

// ------------------------------------------------------------------ steps

async function waitPlaying(page, step, kind, id, timeoutMs, windowMs = 2000) {
  const history = [];
  let first = null;
  const describe = (s) => {
    if (!s || !s.state) return 'no state';
    const st = s.state;
    if (!st.tile) return `no tile for ${kind} ${id}`;
    if (!st.entry) return `tile for ${kind} ${id} has no player${st.unplayable ? ` (${st.unplayable})` : ''}${st.overlay ? ` (${st.overlay})` : ''}`;
    return `frames=${st.frames} width=${st.width} currentTime=${st.currentTime.toFixed(2)} readyState=${st.readyState} paused=${st.paused} hls=${st.hls}` +
      `${st.overlay ? ` overlay="${st.overlay}"` : ''}${st.errors && st.errors.length ? ` hlsErrors=${st.errors.join(',')}` : ''}${st.mediaError ? ` mediaError=${st.mediaError}` : ''}`;
  };
  const res = await until(step, timeoutMs, async () => {
    const st = await page.evaluate(pagePlayerState, [kind, id]);
    if (st.unplayable) throw new StepError(step, `tile shows "${st.unplayable}" instead of a player`);
    if (!st.entry) return { ok: false, state: st };
    if (!st.hls) throw new StepError(step, `${kind} tile ${id} is not played by hls.js (window.__custodyPlayers entry has hls = null)`);
    if (!first && st.frames > 0) first = st;
    history.push(st);
    while (history.length > 200) history.shift();
    const now = st;
    // A sample at least `windowMs` old that was already decoding, with growth since.
    const base = history.find((h) => now.t - h.t >= windowMs && h.frames > 0 && now.frames > h.frames && now.currentTime > h.currentTime);
    if (base && now.width > 0) {
      return { ok: true, state: now, base };
    }
    // A short stored recording may end inside the window: accept it if it decoded and advanced.
    if (now.ended && first && now.frames > first.frames && now.currentTime > first.currentTime && now.width > 0) {
      return { ok: true, state: now, base: first, endedEarly: true };
    }
    return { ok: false, state: st };
  }, describe);
  return res;
}

async function measureLatency(page, kind, id, opts, timeoutMs) {
  const wantSamples = opts.latencySamples;
  const minMs = opts.latencySeconds * 1000;
  const capMs = Math.min(timeoutMs, Math.max(minMs * 4, 20000));
  const t0 = Date.now();
  const samples = [];
  const rejected = [];
  let lastValue = null;
  for (;;) {
    const elapsed = Date.now() - t0;
    if (elapsed >= minMs && samples.length >= wantSamples) break;
    if (elapsed >= capMs) break;
    // No barcode at all (every read invalid): give up after the minimum window.
    if (elapsed >= minMs && samples.length === 0 && rejected.length >= wantSamples) break;
    const r = await page.evaluate(pageReadBarcode, [kind, id]);
    if (r.error) {
      rejected.push({ reason: r.error });
    } else if (Math.abs(r.latency) > 60000) {
      rejected.push({ reason: 'out of range', value: r.value, latency: r.latency, margin: r.margin });
    } else if (lastValue !== null && r.value === lastValue) {
      // Same frame again (paused or stalled): not a new sample.
    } else {
      samples.push(r.latency);
      lastValue = r.value;
    }
    await sleep(300);
  }
  const sorted = samples.slice().sort((a, b) => a - b);
  const pct = (p) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(p * (sorted.length - 1) + 0.5))] : null);
  const round = (v) => (v === null ? null : Math.round(v));
  const result = {
    p50: round(pct(0.5)),
    max: round(sorted.length ? sorted[sorted.length - 1] : null),
    min: round(sorted.length ? sorted[0] : null),
    samples: samples.length,
    rejected: rejected.length,
    duration_ms: Date.now() - t0,
  };
  if (rejected.length) log('latency: rejected', rejected.length, 'reads, e.g.', JSON.stringify(rejected.slice(0, 2)));
  return result;
}

// ------------------------------------------------------------------ main

async function main() {
  let opts;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (e) {
    finish({ ok: false, error: e.message, step: 'args' }, 1);
    return;
  }
  const stepMs = opts.timeout * 1000;
  fs.mkdirSync(opts.out, { recursive: true });

  // Never hang the calling test: a hard ceiling over all steps.
  const watchdog = setTimeout(() => {
    finish({ ok: false, error: `watchdog: the whole run exceeded ${Math.round((stepMs * 8 + 60000) / 1000)} s`, step: current }, 1);
    process.exit(1);
  }, stepMs * 8 + 60000);
  watchdog.unref();

  let current = 'launch';
  let context;
  let page;
  const userDir = fs.mkdtempSync(path.join(os.tmpdir(), 'custody-wall-'));
  const consoleLines = [];
  const screenshots = [];
  try {
    let chromium;
    try {
      ({ chromium } = require('playwright-core'));
    } catch (e) {
      throw new StepError('launch', `playwright-core is not installed (npm ci --prefix tests/browser): ${e.message}`);
    }
    if (!fs.existsSync(opts.chromium)) throw new StepError('launch', `${opts.chromium} not found (apt-get install -y chromium)`);
    context = await chromium.launchPersistentContext(userDir, {
      executablePath: opts.chromium,
      headless: true,
      ignoreHTTPSErrors: true,
      viewport: { width: 1600, height: 900 },
      timeout: stepMs,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--autoplay-policy=no-user-gesture-required',
      ],
    });
    page = context.pages()[0] || (await context.newPage());
    page.setDefaultTimeout(stepMs);
    page.on('console', (m) => {
      const line = `${m.type()}: ${m.text()}`;
      consoleLines.push(line);
      if (consoleLines.length > 50) consoleLines.shift();
      if (m.type() === 'error' || m.type() === 'warning') log('page', line);
    });
    page.on('pageerror', (e) => {
      consoleLines.push(`pageerror: ${e.message}`);
      log('pageerror', e.message);
    });

    // ---- open
    current = 'open';
    const resp = await page.goto(`${opts.url}/`, { waitUntil: 'load', timeout: stepMs });
    if (!resp || !resp.ok()) throw new StepError('open', `GET / answered ${resp ? resp.status() : 'nothing'}`);
    const hlsLoaded = await page.evaluate(() => typeof window.Hls === 'function' && window.Hls.isSupported());
    if (!hlsLoaded) throw new StepError('open', 'hls.js is not loaded or not supported (GET /hls.min.js?)');

    // ---- login
    current = 'login';
    await page.waitForSelector('#login-token', { state: 'visible', timeout: stepMs });
    await page.fill('#login-token', opts.token);
    await page.click('#login-submit');
    await until('login', stepMs, async () => {
      const s = await page.evaluate(() => ({
        wall: !document.querySelector('#wall').hidden,
        message: document.querySelector('#login-message').textContent,
        error: document.querySelector('#error').hidden ? null : document.querySelector('#error-text').textContent,
      }));
      if (s.wall) return { ok: true };
      if (/invalid|not authorized|failed/i.test(s.message)) throw new StepError('login', `sign-in refused: ${s.message}`);
      return { ok: false, ...s };
    });

    // ---- live list
    current = 'live-list';
    const pick = await until('live-list', stepMs, async () => {
      const items = await page.evaluate(() => Array.from(document.querySelectorAll('#live-list .live-item')).map((li) => ({
        recorder: li.dataset.recorder,
        recording: li.dataset.recording,
        status: li.dataset.status,
        playable: li.dataset.playable,
        hasWatch: !!li.querySelector('.watch'),
      })));
      const usable = items.find((i) => i.hasWatch && i.playable === 'true' && i.status === 'live') ||
        items.find((i) => i.hasWatch && i.playable === 'true' && i.status !== 'ended');
      if (usable) return { ok: true, item: usable, count: items.length };
      const err = await page.evaluate(() => (document.querySelector('#error').hidden ? null : document.querySelector('#error-text').textContent));
      return { ok: false, items, error: err };
    }, (s) => (s && s.items && s.items.length ? `no playable live feed among ${JSON.stringify(s.items)}` : `no live items appeared${s && s.error ? ` (error: ${s.error})` : ''}`));
    const live = pick.item;
    const liveId = `${live.recorder}/${live.recording}`;
    log('watching live', liveId);

    // ---- live playback
    current = 'live-play';
    await page.click(`#live-list .live-item[data-recorder="${cssEscape(live.recorder)}"][data-recording="${cssEscape(live.recording)}"] .watch`);
    const livePlay = await waitPlaying(page, 'live-play', 'live', liveId, stepMs);
    log('live playing', JSON.stringify(livePlay.state));

    // ---- latency
    current = 'latency';
    const latency = await measureLatency(page, 'live', liveId, opts, stepMs);
    log('latency', JSON.stringify(latency));
    if (opts.maxLatencyMs !== null) {
      if (latency.samples < opts.latencySamples) {
        throw new StepError('latency', `only ${latency.samples} valid barcode samples (${latency.rejected} rejected); need ${opts.latencySamples}`, { latency_ms: latency });
      }
      if (latency.p50 > opts.maxLatencyMs) {
        throw new StepError('latency', `glass-to-glass p50 ${latency.p50} ms exceeds ${opts.maxLatencyMs} ms`, { latency_ms: latency });
      }
    }
    // Still playing after the latency window?
    const liveAfter = await page.evaluate(pagePlayerState, ['live', liveId]);

    current = 'screenshot-live';
    const liveShot = path.join(opts.out, 'wall-live.png');
    await page.screenshot({ path: liveShot, timeout: stepMs });
    screenshots.push(liveShot);

    // ---- stored search
    current = 'search';
    await page.fill('#search-device', opts.storedDevice || '');
    await page.click('#search-submit');
    const found = await until('search', stepMs, async () => {
      const s = await page.evaluate(() => {
        const rows = Array.from(document.querySelectorAll('#results .result'));
        const playable = rows.find((r) => r.querySelector('.play'));
        return {
          rows: rows.length,
          status: document.querySelector('#search-status').textContent,
          error: document.querySelector('#error').hidden ? null : document.querySelector('#error-text').textContent,
          first: playable ? { recorder: playable.dataset.recorder, recording: playable.dataset.recording } : null,
        };
      });
      if (s.first) return { ok: true, ...s };
      return { ok: false, ...s };
    }, (s) => (s && s.rows ? `${s.rows} results but none has a play button` : `no stored results (${s && (s.error || s.status)})`));
    const storedId = `${found.first.recorder}/${found.first.recording}`;
    log('playing stored', storedId, `(${found.rows} results)`);

    current = 'stored-play';
    await page.click(`#results .result[data-recorder="${cssEscape(found.first.recorder)}"][data-recording="${cssEscape(found.first.recording)}"] .play`);
    const storedPlay = await waitPlaying(page, 'stored-play', 'stored', storedId, stepMs);
    log('stored playing', JSON.stringify(storedPlay.state));

    current = 'screenshot-stored';
    const storedShot = path.join(opts.out, 'wall-stored.png');
    await page.screenshot({ path: storedShot, timeout: stepMs });
    screenshots.push(storedShot);

    // ---- logout: the wall's own POST passes the gateway's cross-site
    // checks (JSON body, same origin), and the session really ends.
    current = 'logout';
    await page.click('#logout');
    await until('logout', stepMs, async () => {
      const s = await page.evaluate(async () => ({
        login: !document.querySelector('#login').hidden,
        me: (await fetch('/api/me', { credentials: 'same-origin', cache: 'no-store' })).status,
      }));
      return s.login && s.me === 401 ? { ok: true } : { ok: false, ...s };
    }, (s) => `still signed in after logout: ${JSON.stringify(s)}`);

    const summary = (p) => ({
      frames: p.state.frames,
      frames_grown: p.state.frames - p.base.frames,
      width: p.state.width,
      height: p.state.height,
      currentTime: Math.round(p.state.currentTime * 1000) / 1000,
      advanced_s: Math.round((p.state.currentTime - p.base.currentTime) * 1000) / 1000,
      window_ms: p.state.t - p.base.t,
      hls: p.state.hls,
      lowLatencyMode: p.state.lowLatencyMode,
    });
    const liveOut = { id: liveId, ...summary(livePlay), framesAfterLatency: liveAfter.frames };
    const storedOut = { id: storedId, ...summary(storedPlay), ...(storedPlay.endedEarly ? { ended: true } : {}) };
    finish({ ok: true, live: liveOut, stored: storedOut, latency_ms: latency, screenshots }, 0);
  } catch (e) {
    const step = e instanceof StepError ? e.step : current;
    let failureShot = null;
    if (page) {
      try {
        failureShot = path.join(opts.out, 'failure.png');
        await page.screenshot({ path: failureShot, timeout: 10000 });
      } catch {
        failureShot = null;
      }
    }
    const msg = (e && e.message ? e.message : String(e)).split('\n')[0];
    finish({
      ok: false,
      error: msg,
      step,
      ...(e instanceof StepError && e.extra ? e.extra : {}),
      screenshots: failureShot ? [...screenshots, failureShot] : screenshots,
      console: consoleLines.filter((l) => !l.startsWith('log:') && !l.startsWith('debug:')).slice(-10),
    }, 1);
  } finally {
    clearTimeout(watchdog);
    if (context) {
      await Promise.race([context.close().catch(() => {}), sleep(10000)]);
    }
    try {
      fs.rmSync(userDir, { recursive: true, force: true });
    } catch {
      // leave it to the OS
    }
  }
}

// Minimal CSS attribute-value escape for ids (recorder / recording ids are key-safe).
function cssEscape(s) {
  return String(s).replace(/["\\]/g, '\\$&');
}

main().then(() => process.exit(process.exitCode ?? 0));
