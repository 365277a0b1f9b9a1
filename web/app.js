// custody command-center wall. Plain ES2020, no build step, no framework.
//
// Served by the gateway at /app.js; hls.js is served at /hls.min.js (global `Hls`).
// Every player lives in window.__custodyPlayers as {hls, video, kind, id} so that
// an end-to-end test can inspect it (see tests/browser/wall.mjs).
'use strict';

(() => {
  const LIVE_POLL_MS = 2000;
  const LAYOUTS = { 1: 1, 2: 4, 3: 9 };

  // hls.js settings. Live: LL-HLS (parts, blocking reloads) when the playlist
  // offers it; a gentle speed-up to catch up with the live edge after a stall.
  const LIVE_HLS_CONFIG = {
    lowLatencyMode: true,
    enableWorker: true,
    backBufferLength: 30,
    liveDurationInfinity: true,
    maxLiveSyncPlaybackRate: 1.5,
  };
  const STORED_HLS_CONFIG = {
    lowLatencyMode: false,
    enableWorker: true,
    backBufferLength: 90,
  };

  const STATUS_LABEL = {
    live: 'live',
    reconnecting: 'reconnecting',
    gap: 'gap',
    ended: 'ended',
  };
  const STATUS_ORDER = { live: 0, reconnecting: 1, gap: 2, ended: 3 };

  const $ = (sel, root = document) => root.querySelector(sel);
  const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));

  window.__custodyPlayers = [];

  const state = {
    user: null,
    pollTimer: null,
    pollGeneration: 0,
    liveItems: new Map(), // key "recorder/recording" -> last JSON item
    tiles: new Map(), // key "kind:id" -> tile record
    layout: 2,
    errorSource: null,
  };

  // ---------------------------------------------------------------- helpers

  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  async function api(path, { method = 'GET', body } = {}) {
    let res;
    try {
      res = await fetch(path, {
        method,
        headers: body === undefined ? { Accept: 'application/json' } : { Accept: 'application/json', 'Content-Type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: 'same-origin',
        cache: 'no-store',
      });
    } catch (e) {
      throw new ApiError(0, 'gateway unreachable (network error)');
    }
    const text = await res.text().catch(() => '');
    if (!res.ok) {
      let detail = '';
      if (text) {
        try {
          const j = JSON.parse(text);
          detail = (j && (j.error || j.message)) || '';
        } catch {
          detail = text.length < 200 ? text.trim() : '';
        }
      }
      const reason = { 401: 'not signed in', 403: 'not authorized' }[res.status] || `HTTP ${res.status}`;
      throw new ApiError(res.status, detail ? `${reason}: ${detail}` : reason);
    }
    if (!text) return null;
    try {
      return JSON.parse(text);
    } catch {
      throw new ApiError(res.status, 'the gateway sent a malformed response');
    }
  }

  function el(tag, props = {}, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(props)) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') e.className = v;
      else if (k === 'text') e.textContent = v;
      else if (k === 'dataset') Object.assign(e.dataset, v);
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children) if (c !== null && c !== undefined) e.append(c);
    return e;
  }

  const pad = (n, w = 2) => String(n).padStart(w, '0');

  function fmtTime(s) {
    if (!s) return '—';
    const d = new Date(s);
    if (Number.isNaN(d.getTime())) return String(s);
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  }

  function fmtClock(d) {
    return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  }

  function fmtAge(s) {
    if (!s) return null;
    const t = new Date(s).getTime();
    if (Number.isNaN(t)) return null;
    const sec = Math.max(0, Math.round((Date.now() - t) / 1000));
    if (sec < 60) return `${sec} s ago`;
    if (sec < 3600) return `${Math.floor(sec / 60)} min ago`;
    return `${Math.floor(sec / 3600)} h ago`;
  }

  function fmtDuration(v) {
    if (v === null || v === undefined || v === '') return '—';
    const n = typeof v === 'number' ? v : Number(v);
    if (!Number.isFinite(n)) return String(v);
    const s = Math.round(n);
    return `${Math.floor(s / 3600)}:${pad(Math.floor((s % 3600) / 60))}:${pad(s % 60)}`;
  }

  function gapCount(g) {
    if (Array.isArray(g)) return g.length;
    if (typeof g === 'number') return g;
    return 0;
  }

  function codecString(c) {
    if (Array.isArray(c)) return c.join(',');
    return c ? String(c) : '';
  }

  function isHevc(codecs) {
    return /\b(hvc1|hev1|h\.?265|hevc)/i.test(codecs);
  }

  // The server says whether a recording is playable; double-check against what
  // this browser's MSE can decode so an unsupported codec fails early and plainly.
  function browserCanDecode(codecs) {
    if (!codecs) return true;
    if (isHevc(codecs)) {
      const ms = window.MediaSource;
      return !!(ms && ms.isTypeSupported && ms.isTypeSupported(`video/mp4; codecs="${codecs}"`));
    }
    const ms = window.MediaSource;
    if (ms && ms.isTypeSupported) {
      // Only veto on a clear "no" for a well-formed codecs list.
      if (/^[A-Za-z0-9.,\s-]+$/.test(codecs)) return ms.isTypeSupported(`video/mp4; codecs="${codecs}"`);
    }
    return true;
  }

  // "avc1.64001f,mp4a.40.2" -> "H.264 + AAC" (the full string is kept in a tooltip).
  function codecLabel(codecs) {
    if (!codecs) return '—';
    const names = codecs.split(',').map((c) => c.trim()).filter(Boolean).map((c) => {
      if (/^(avc1|avc3)/i.test(c)) return 'H.264';
      if (/^(hvc1|hev1)/i.test(c)) return 'H.265';
      if (/^vp0?9/i.test(c)) return 'VP9';
      if (/^av01/i.test(c)) return 'AV1';
      if (/^mp4a/i.test(c)) return 'AAC';
      if (/^opus/i.test(c)) return 'Opus';
      return c;
    });
    return names.join(' + ');
  }

  function unplayableText(codecs) {
    if (isHevc(codecs)) return 'H.265 — not playable in this browser';
    return `${codecs || 'This codec'} — not playable in this browser`;
  }

  // datetime-local ("2026-03-01T08:30") -> RFC 3339 with the local offset.
  function toRfc3339(local) {
    if (!local) return '';
    const d = new Date(local);
    if (Number.isNaN(d.getTime())) return local;
    const off = -d.getTimezoneOffset();
    const sign = off >= 0 ? '+' : '-';
    const a = Math.abs(off);
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}${sign}${pad(Math.floor(a / 60))}:${pad(a % 60)}`;
  }

  // ---------------------------------------------------------------- errors

  function showError(message, source = 'general') {
    $('#error-text').textContent = message;
    $('#error').hidden = false;
    state.errorSource = source;
  }

  function clearError(source) {
    if (source && state.errorSource !== source) return;
    $('#error').hidden = true;
    $('#error-text').textContent = '';
    state.errorSource = null;
  }

  // Common handling: 401 returns to sign-in; others are shown plainly.
  function reportApiError(err, what, source) {
    if (err instanceof ApiError && err.status === 401) {
      sessionEnded('Your session has ended — sign in again.');
      return;
    }
    const msg = err instanceof ApiError ? err.message : String(err && err.message ? err.message : err);
    showError(`${what}: ${msg}`, source);
  }

  // ---------------------------------------------------------------- views

  function showLogin(message = '') {
    state.user = null;
    $('#wall').hidden = true;
    $('#user').hidden = true;
    $('#logout').hidden = true;
    $('#login').hidden = false;
    $('#login-message').textContent = message;
    $('#login-submit').disabled = false;
    $('#login-token').focus();
  }

  function showWall(user) {
    state.user = user || {};
    $('#login').hidden = true;
    $('#wall').hidden = false;
    const u = $('#user');
    u.textContent = '';
    u.append(el('strong', { text: state.user.name || 'signed in' }));
    const extra = [state.user.role, state.user.unit].filter(Boolean).join(' · ');
    if (extra) u.append(` — ${extra}`);
    u.hidden = false;
    $('#logout').hidden = false;
    setLayout(state.layout);
    startPolling();
  }

  function teardown() {
    stopPolling();
    for (const key of Array.from(state.tiles.keys())) closeTile(key);
    state.liveItems.clear();
    $('#live-list').textContent = '';
    $('#live-count').textContent = '';
    $('#live-status').textContent = '';
    $('#results').textContent = '';
    $('#search-status').textContent = '';
  }

  function sessionEnded(message) {
    if (!state.user && !$('#login').hidden) {
      $('#login-message').textContent = message;
      return;
    }
    teardown();
    clearError();
    showLogin(message);
  }

  // ---------------------------------------------------------------- login

  async function onLogin(ev) {
    ev.preventDefault();
    const input = $('#login-token');
    const token = input.value.trim();
    const msg = $('#login-message');
    if (!token) {
      msg.textContent = 'Enter your access token.';
      input.focus();
      return;
    }
    $('#login-submit').disabled = true;
    msg.textContent = 'Signing in…';
    try {
      const user = await api('/api/login', { method: 'POST', body: { token } });
      input.value = '';
      msg.textContent = '';
      clearError();
      showWall(user);
    } catch (err) {
      $('#login-submit').disabled = false;
      if (err instanceof ApiError && err.status === 401) msg.textContent = 'Invalid, expired or revoked token.';
      else if (err instanceof ApiError && err.status === 403) msg.textContent = `Not authorized. ${err.message}`;
      else if (err instanceof ApiError && err.status === 429) msg.textContent = 'Too many attempts — wait and try again.';
      else msg.textContent = `Sign-in failed: ${err.message}`;
      input.select();
    }
  }

  async function onLogout() {
    try {
      await api('/api/logout', { method: 'POST', body: {} });
    } catch {
      // The cookie may already be gone; sign out locally regardless.
    }
    teardown();
    clearError();
    showLogin('Signed out.');
  }

  // ---------------------------------------------------------------- live feeds

  function startPolling() {
    stopPolling();
    const gen = ++state.pollGeneration;
    const tick = async () => {
      if (gen !== state.pollGeneration || !state.user) return;
      try {
        const list = await api('/api/live');
        if (gen !== state.pollGeneration) return;
        renderLive(Array.isArray(list) ? list : []);
        $('#live-status').textContent = `Updated ${fmtClock(new Date())}`;
        clearError('live');
      } catch (err) {
        if (gen !== state.pollGeneration) return;
        $('#live-status').textContent = `Update failed at ${fmtClock(new Date())} — retrying`;
        reportApiError(err, 'Live feeds', 'live');
        if (err instanceof ApiError && err.status === 401) return;
      }
      if (gen === state.pollGeneration && state.user) state.pollTimer = setTimeout(tick, LIVE_POLL_MS);
    };
    tick();
  }

  function stopPolling() {
    state.pollGeneration++;
    if (state.pollTimer) clearTimeout(state.pollTimer);
    state.pollTimer = null;
  }

  const liveKey = (it) => `${it.recorder}/${it.recording_id}`;

  function buildLiveItem(key) {
    const li = el('li', { class: 'live-item' });
    li.append(
      el('div', { class: 'li-device' }),
      el('div', { class: 'li-officer' }),
      el('div', { class: 'li-actions' },
        el('span', { class: 'badge li-status' }),
        el('button', { type: 'button', class: 'btn watch' }, 'Watch')),
      el('div', { class: 'li-meta' }),
    );
    li.addEventListener('click', (ev) => {
      if (ev.target.closest('a')) return;
      const it = state.liveItems.get(key);
      if (it) watchLive(it);
    });
    return li;
  }

  function updateLiveItem(li, it) {
    const status = STATUS_LABEL[it.status] ? it.status : 'ended';
    li.className = `live-item st-${status}`;
    li.dataset.recorder = it.recorder;
    li.dataset.recording = it.recording_id;
    li.dataset.status = status;
    const codecs = codecString(it.codecs);
    const playable = it.playable !== false && !!it.master && browserCanDecode(codecs);
    li.dataset.playable = String(playable);
    if (state.tiles.has(`live:${liveKey(it)}`)) li.classList.add('watching');

    $('.li-device', li).textContent = it.recorder;
    const officer = it.officer_name ? `${it.officer_name} (${it.officer || '?'})` : (it.officer || 'unknown officer');
    $('.li-officer', li).textContent = officer;
    const badge = $('.li-status', li);
    badge.className = `badge li-status st-${status}`;
    badge.textContent = STATUS_LABEL[status];
    const gaps = gapCount(it.gaps);
    const meta = [
      it.occasion,
      it.case_id ? `case ${it.case_id}` : 'no case',
      it.category,
      it.unit,
      it.started_at ? `since ${fmtTime(it.started_at)}` : null,
      fmtAge(it.last_byte_at) ? `last data ${fmtAge(it.last_byte_at)}` : null,
      gaps ? `${gaps} gap${gaps === 1 ? '' : 's'}` : null,
      playable ? null : (codecs ? unplayableText(codecs) : 'not playable'),
    ].filter(Boolean).join(' · ');
    $('.li-meta', li).textContent = meta;
    const btn = $('.watch', li);
    btn.setAttribute('aria-label', `Watch ${it.recorder}, ${officer}, ${STATUS_LABEL[status]}`);
    btn.onclick = (ev) => {
      ev.stopPropagation();
      watchLive(state.liveItems.get(liveKey(it)) || it);
    };
  }

  function renderLive(list) {
    const ul = $('#live-list');
    const seen = new Set();
    const sorted = list
      .filter((it) => it && it.recorder && it.recording_id)
      .sort((a, b) => {
        const sa = STATUS_ORDER[a.status] ?? 9;
        const sb = STATUS_ORDER[b.status] ?? 9;
        if (sa !== sb) return sa - sb;
        return String(b.started_at || '').localeCompare(String(a.started_at || ''));
      });
    const existing = new Map($$('.live-item', ul).map((li) => [li.dataset.key, li]));
    const order = [];
    for (const it of sorted) {
      const key = liveKey(it);
      if (seen.has(key)) continue;
      seen.add(key);
      state.liveItems.set(key, it);
      let li = existing.get(key);
      if (!li) {
        li = buildLiveItem(key);
        li.dataset.key = key;
      }
      updateLiveItem(li, it);
      order.push(li);
    }
    for (const [key, li] of existing) {
      if (!seen.has(key)) {
        li.remove();
        state.liveItems.delete(key);
      }
    }
    // Re-order only when the order changed, so focus and clicks are not disturbed.
    const current = $$('.live-item', ul);
    const same = current.length === order.length && current.every((li, i) => li === order[i]);
    if (!same) order.forEach((li) => ul.append(li));
    let empty = $('.live-empty', ul);
    if (order.length === 0 && !empty) ul.append(el('li', { class: 'live-empty muted', text: 'No live feeds.' }));
    if (order.length > 0 && empty) empty.remove();
    const active = sorted.filter((it) => it.status !== 'ended').length;
    $('#live-count').textContent = `${active} active / ${order.length}`;

    // Keep live tiles' labels in step with the feed list.
    for (const t of state.tiles.values()) {
      if (t.kind !== 'live') continue;
      const it = state.liveItems.get(t.id);
      setTileStatus(t, it ? it.status : 'ended', it ? null : 'no longer listed');
    }
  }

  function watchLive(it) {
    openTile({
      kind: 'live',
      id: liveKey(it),
      recorder: it.recorder,
      recording: it.recording_id,
      officer: it.officer_name || it.officer,
      occasion: it.occasion,
      status: it.status,
      master: it.master,
      playable: it.playable !== false,
      codecs: codecString(it.codecs),
      download: it.download || null,
    });
  }

  // ---------------------------------------------------------------- grid

  function setLayout(n) {
    n = LAYOUTS[n] ? Number(n) : 2;
    state.layout = n;
    try { localStorage.setItem('custody.layout', String(n)); } catch { /* private mode */ }
    const grid = $('#grid');
    grid.classList.remove('layout-1', 'layout-2', 'layout-3');
    grid.classList.add(`layout-${n}`);
    for (const b of $$('.layout')) b.setAttribute('aria-checked', String(Number(b.dataset.layout) === n));
    const cap = LAYOUTS[n];
    while (state.tiles.size > cap) closeTile(state.tiles.keys().next().value);
  }

  function updateGridEmpty() {
    $('.grid-empty').hidden = state.tiles.size > 0;
  }

  function markWatching() {
    for (const li of $$('.live-item')) li.classList.toggle('watching', state.tiles.has(`live:${li.dataset.key}`));
  }

  function openTile(spec) {
    const key = `${spec.kind}:${spec.id}`;
    const existing = state.tiles.get(key);
    if (existing) {
      existing.el.classList.remove('flash');
      void existing.el.offsetWidth; // restart the animation
      existing.el.classList.add('flash');
      $('.close', existing.el).focus();
      return existing;
    }
    const cap = LAYOUTS[state.layout];
    while (state.tiles.size >= cap) closeTile(state.tiles.keys().next().value);

    const node = $('#tile-template').content.firstElementChild.cloneNode(true);
    node.dataset.kind = spec.kind;
    node.dataset.id = spec.id;
    node.dataset.recorder = spec.recorder;
    node.dataset.recording = spec.recording;
    node.setAttribute('aria-label', `${spec.kind === 'live' ? 'Live' : 'Stored'} ${spec.recorder} ${spec.recording}`);
    $('.tile-device', node).textContent = spec.recorder;
    $('.tile-officer', node).textContent = spec.officer || '';
    $('.tile-occasion', node).textContent = spec.occasion || '';
    const tile = { key, kind: spec.kind, id: spec.id, spec, el: node, entry: null, overlay: null, retry: null, attempts: 0, mediaRecoveries: [], closed: false };
    $('.close', node).addEventListener('click', () => closeTile(key));
    $('.tile-full', node).addEventListener('click', () => {
      if (document.fullscreenElement) document.exitFullscreen().catch(() => {});
      else node.requestFullscreen?.().catch(() => {});
    });
    state.tiles.set(key, tile);
    $('#grid').append(node);
    setTileStatus(tile, spec.kind === 'live' ? spec.status : 'stored');
    updateGridEmpty();
    markWatching();

    const media = $('.tile-media', node);
    if (spec.playable === false || (spec.master && !browserCanDecode(spec.codecs))) {
      showUnplayable(media, unplayableText(spec.codecs), spec.download);
    } else if (!spec.master) {
      showUnplayable(media, 'No playable copy of this recording', spec.download);
    } else {
      startPlayer(tile);
    }
    return tile;
  }

  function showUnplayable(media, text, download) {
    media.textContent = '';
    const box = el('div', { class: 'tile-unplayable' }, el('strong', { text }));
    if (download) box.append(el('a', { class: 'download btn', href: download, download: '' }, 'Download original'));
    else box.append(el('span', { class: 'muted', text: 'Open it from stored recordings to download.' }));
    media.append(box);
  }

  function setTileStatus(tile, status, note) {
    const badge = $('.tile-status', tile.el);
    const st = status === 'stored' ? 'stored' : (STATUS_LABEL[status] ? status : 'ended');
    badge.className = `badge tile-status st-${st}`;
    badge.textContent = note ? `${st} — ${note}` : st;
    tile.el.classList.remove('st-live', 'st-reconnecting', 'st-gap', 'st-ended', 'st-stored');
    tile.el.classList.add(`st-${st}`);
    tile.el.dataset.status = st;
  }

  function setOverlay(tile, text, isError = false) {
    const media = $('.tile-media', tile.el);
    if (!text) {
      if (tile.overlay) tile.overlay.hidden = true;
      return;
    }
    if (!tile.overlay) {
      tile.overlay = el('div', { class: 'tile-overlay', role: 'status' });
      media.append(tile.overlay);
    }
    tile.overlay.textContent = text;
    tile.overlay.classList.toggle('error', isError);
    tile.overlay.hidden = false;
  }

  function startPlayer(tile) {
    const media = $('.tile-media', tile.el);
    const video = document.createElement('video');
    video.muted = true;
    video.defaultMuted = true;
    video.autoplay = true;
    video.playsInline = true;
    video.setAttribute('muted', '');
    video.setAttribute('autoplay', '');
    video.setAttribute('playsinline', '');
    video.controls = tile.kind === 'stored';
    video.setAttribute('aria-label', `${tile.spec.recorder} ${tile.spec.recording}`);
    media.append(video);
    const entry = { hls: null, video, kind: tile.kind, id: tile.id, errors: [] };
    tile.entry = entry;
    window.__custodyPlayers.push(entry);
    setOverlay(tile, 'Loading…');

    video.addEventListener('waiting', () => { if (!tile.closed) setOverlay(tile, 'Buffering…'); });
    video.addEventListener('playing', () => { if (!tile.closed) setOverlay(tile, null); });
    video.addEventListener('ended', () => { if (!tile.closed) setOverlay(tile, 'End of recording'); });
    video.addEventListener('error', () => {
      if (tile.closed || entry.hls) return;
      const e = video.error;
      setOverlay(tile, `Playback error${e ? ` (${e.code}${e.message ? `: ${e.message}` : ''})` : ''}`, true);
    });

    const Hls = window.Hls;
    if (Hls && Hls.isSupported()) {
      attachHls(tile);
    } else if (video.canPlayType('application/vnd.apple.mpegurl')) {
      video.src = tile.spec.master;
      video.play().catch(() => {});
    } else {
      setOverlay(tile, 'This browser cannot play HLS', true);
    }
  }

  function attachHls(tile) {
    const Hls = window.Hls;
    const entry = tile.entry;
    const video = entry.video;
    const hls = new Hls(tile.kind === 'live' ? { ...LIVE_HLS_CONFIG } : { ...STORED_HLS_CONFIG });
    entry.hls = hls;
    hls.on(Hls.Events.MANIFEST_PARSED, () => {
      tile.attempts = 0;
      video.play().catch(() => {});
    });
    hls.on(Hls.Events.ERROR, (_ev, data) => onHlsError(tile, hls, data));
    hls.attachMedia(video);
    hls.loadSource(tile.spec.master);
  }

  function onHlsError(tile, hls, data) {
    if (tile.closed || tile.entry.hls !== hls) return;
    const Hls = window.Hls;
    const code = data.response && data.response.code;
    tile.entry.errors.push({ type: data.type, details: data.details, fatal: !!data.fatal, code: code || null, at: Date.now() });
    if (tile.entry.errors.length > 20) tile.entry.errors.shift();
    if (!data.fatal) return;

    if (data.type === Hls.ErrorTypes.NETWORK_ERROR && code === 401) {
      sessionEnded('Your session has ended — sign in again.');
      return;
    }
    if (data.type === Hls.ErrorTypes.NETWORK_ERROR && code === 403) {
      destroyHls(tile);
      setOverlay(tile, 'Not authorized to view this recording (403)', true);
      return;
    }
    if (data.type === Hls.ErrorTypes.MEDIA_ERROR) {
      const now = Date.now();
      tile.mediaRecoveries = tile.mediaRecoveries.filter((t) => now - t < 15000);
      tile.mediaRecoveries.push(now);
      if (tile.mediaRecoveries.length === 1) {
        hls.recoverMediaError();
        return;
      }
      if (tile.mediaRecoveries.length === 2) {
        hls.swapAudioCodec();
        hls.recoverMediaError();
        return;
      }
    }
    // Anything else fatal: rebuild the player after a back-off. Live feeds keep
    // trying while the tile is open (the recorder may be reconnecting).
    destroyHls(tile);
    tile.attempts += 1;
    const limit = tile.kind === 'live' ? Infinity : 4;
    const what = code ? `HTTP ${code}` : data.details;
    if (tile.attempts > limit) {
      setOverlay(tile, `Playback failed: ${what}`, true);
      return;
    }
    const delay = Math.min(10000, 1000 * 2 ** Math.min(tile.attempts, 4));
    setOverlay(tile, `${tile.kind === 'live' ? 'Feed unavailable' : 'Playback error'} (${what}) — retrying in ${Math.round(delay / 1000)} s`, true);
    tile.retry = setTimeout(() => {
      tile.retry = null;
      if (!tile.closed) attachHls(tile);
    }, delay);
  }

  function destroyHls(tile) {
    const hls = tile.entry && tile.entry.hls;
    if (hls) {
      try { hls.destroy(); } catch { /* already gone */ }
    }
  }

  function closeTile(key) {
    const tile = state.tiles.get(key);
    if (!tile) return;
    tile.closed = true;
    if (tile.retry) clearTimeout(tile.retry);
    destroyHls(tile);
    if (tile.entry) {
      const v = tile.entry.video;
      try {
        v.pause();
        v.removeAttribute('src');
        v.load();
      } catch { /* ignore */ }
      const i = window.__custodyPlayers.indexOf(tile.entry);
      if (i >= 0) window.__custodyPlayers.splice(i, 1);
    }
    tile.el.remove();
    state.tiles.delete(key);
    updateGridEmpty();
    markWatching();
  }

  // Per-second label refresh: latency estimate for live tiles, position for stored.
  function refreshTileInfo() {
    for (const t of state.tiles.values()) {
      const info = $('.tile-info', t.el);
      const e = t.entry;
      if (!e) { info.textContent = ''; continue; }
      const v = e.video;
      if (t.kind === 'live') {
        const lat = e.hls && Number.isFinite(e.hls.latency) ? e.hls.latency : null;
        info.textContent = lat !== null && lat > 0 ? `behind live ${lat.toFixed(1)} s` : '';
      } else {
        const d = Number.isFinite(v.duration) ? v.duration : null;
        info.textContent = `${fmtDuration(v.currentTime)}${d ? ` / ${fmtDuration(d)}` : ''}`;
      }
    }
  }

  // ---------------------------------------------------------------- stored search

  async function onSearch(ev) {
    ev.preventDefault();
    const form = $('#search-form');
    const params = new URLSearchParams();
    for (const name of ['officer', 'device', 'case', 'category', 'occasion', 'from', 'to']) {
      const field = form.elements.namedItem(name);
      let v = field ? String(field.value || '').trim() : '';
      if (!v) continue;
      if (name === 'from' || name === 'to') v = toRfc3339(v);
      params.set(name, v);
    }
    const status = $('#search-status');
    const btn = $('#search-submit');
    btn.disabled = true;
    status.textContent = 'Searching…';
    try {
      const qs = params.toString();
      const rows = await api(`/api/recordings${qs ? `?${qs}` : ''}`);
      renderResults(Array.isArray(rows) ? rows : []);
      clearError('search');
    } catch (err) {
      status.textContent = 'Search failed.';
      reportApiError(err, 'Stored recordings', 'search');
    } finally {
      btn.disabled = false;
    }
  }

  function renderResults(rows) {
    const tbody = $('#results');
    tbody.textContent = '';
    $('#search-status').textContent = `${rows.length} recording${rows.length === 1 ? '' : 's'} found.`;
    for (const r of rows) {
      if (!r || !r.recorder || !r.recording_id) continue;
      const codecs = codecString(r.codecs);
      const playable = r.playable !== false && !!r.master && browserCanDecode(codecs);
      const actions = el('td', { class: 'actions' });
      if (playable) {
        actions.append(el('button', {
          type: 'button',
          class: 'btn btn-small play',
          'aria-label': `Play ${r.recorder} ${r.recording_id}`,
          onclick: () => playStored(r),
        }, 'Play'));
      } else if (r.master) {
        actions.append(el('span', { class: 'muted', title: unplayableText(codecs), text: isHevc(codecs) ? 'H.265' : 'not playable' }));
      }
      if (r.download) {
        actions.append(el('a', {
          class: 'download',
          href: r.download,
          download: '',
          'aria-label': `Download ${r.recorder} ${r.recording_id}`,
        }, 'Download'));
      }
      const status = r.status || '';
      const tr = el('tr', { class: 'result', dataset: { recorder: r.recorder, recording: r.recording_id } },
        actions,
        el('td', { text: r.recorder }),
        el('td', { text: r.recording_id }),
        el('td', { text: r.officer || '—' }),
        el('td', { text: r.case_id || '—' }),
        el('td', { text: r.category || '—' }),
        el('td', { text: r.occasion || '—' }),
        el('td', { text: fmtTime(r.started_at) }),
        el('td', { text: fmtTime(r.received_at) }),
        el('td', { text: r.mode || '—' }),
        el('td', { text: fmtDuration(r.duration) }),
        el('td', { text: status || '—' }),
        el('td', { class: 'codec', text: codecLabel(codecs), title: codecs || null }),
      );
      tbody.append(tr);
    }
    if (!tbody.firstChild) {
      tbody.append(el('tr', {}, el('td', { colspan: 13, class: 'muted', text: 'No recordings match.' })));
    }
  }

  function playStored(r) {
    openTile({
      kind: 'stored',
      id: `${r.recorder}/${r.recording_id}`,
      recorder: r.recorder,
      recording: r.recording_id,
      officer: r.officer,
      occasion: r.occasion,
      status: 'stored',
      master: r.master,
      playable: r.playable !== false,
      codecs: codecString(r.codecs),
      download: r.download || null,
    });
  }

  // ---------------------------------------------------------------- start

  function tickClock() {
    $('#clock').textContent = fmtClock(new Date());
    refreshTileInfo();
  }

  async function init() {
    $('#login-form').addEventListener('submit', onLogin);
    $('#logout').addEventListener('click', onLogout);
    $('#error-close').addEventListener('click', () => clearError());
    $('#search-form').addEventListener('submit', onSearch);
    for (const b of $$('.layout')) b.addEventListener('click', () => setLayout(Number(b.dataset.layout)));
    try {
      const saved = Number(localStorage.getItem('custody.layout'));
      if (LAYOUTS[saved]) state.layout = saved;
    } catch { /* private mode */ }
    tickClock();
    setInterval(tickClock, 1000);
    if (!window.Hls) console.warn('hls.js did not load; falling back to native HLS where available');

    try {
      const me = await api('/api/me');
      showWall(me);
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) showLogin();
      else {
        showLogin();
        showError(`Cannot reach the gateway: ${err.message}`, 'general');
      }
    }
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
})();
