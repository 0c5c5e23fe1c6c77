// The flowtap web view page: one EventSource on /events (filters in its query, applied by the
// server), rendering each snapshot into a uPlot chart, two sortable tables and the health panel.
// Sorting happens here on the rows the server sent: they are the top N by bytes together with the
// top N by packets, so sorting on either column shows its true top N without asking the server.
// The time range switches between that live stream and a window of the flow store's history,
// fetched once from /history.json (same snapshot shape, same filters) when chosen or filtered.

(() => {
  const MAX_RETRY_MS = 30_000;
  const FILTER_DEBOUNCE_MS = 250;
  const CHART_HEIGHT = 260;
  /** The colour of each direction, as in the terminal view: ingress blue, egress yellow. */
  const DIRECTION_COLORS = { INGRESS: '#2f7ed8', EGRESS: '#d49a00' };
  const OTHER_DIRECTION_COLOR = '#7f8c8d';
  /** Interfaces are told apart by the line's dash, so a direction keeps its colour everywhere. */
  const DASHES = [[], [8, 4], [2, 3], [12, 3, 2, 3]];
  /** Columns whose rows may lack a value (an RTT never measured): those sort last. */
  const OPTIONAL_KEYS = new Set(['rttNs']);
  const TEXT_KEYS = new Set([
    'interface',
    'direction',
    'proto',
    'service',
    'src',
    'dst',
    'address',
    'crossed',
    'tunnel',
  ]);
  /** Length of each preset of the time range, in ms. */
  const RANGE_MS = { '1h': 3_600_000, '24h': 86_400_000, '7d': 7 * 86_400_000 };

  const $ = (id) => document.getElementById(id);
  const state = {
    snapshot: null,
    source: null,
    retryMs: 1000,
    retryTimer: 0,
    chart: null,
    chartKey: '',
    /** True while the chart shows a range dragged on it; new data then keeps that range. */
    zoomed: false,
    sort: { flows: { key: 'bytes', desc: true }, talkers: { key: 'bytes', desc: true } },
    /** Bumped by every history fetch, so an answer that arrives after a newer request is dropped. */
    historyRequest: 0,
  };

  const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  /** Byte count for people, as src/model/names.ts humanBytes prints it. */
  function humanBytes(n) {
    let v = n;
    let unit = 0;
    while (v >= 1024 && unit < UNITS.length - 1) {
      v /= 1024;
      unit++;
    }
    return unit === 0 ? `${Math.round(v)} B` : `${v.toFixed(2)} ${UNITS[unit]}`;
  }
  const count = (n) => Math.round(n).toLocaleString('en-US');
  /** A duration in ns for people: µs below a millisecond, ms below a second, else s. */
  function humanDurationNs(ns) {
    if (ns < 1e6) return `${(ns / 1e3).toFixed(ns < 1e4 ? 1 : 0)} µs`;
    if (ns < 1e9) return `${(ns / 1e6).toFixed(ns < 1e7 ? 2 : 1)} ms`;
    return `${(ns / 1e9).toFixed(2)} s`;
  }

  function setStatus(kind, text) {
    const el = $('status');
    el.dataset.state = kind;
    el.textContent = text;
  }

  function filterQuery(params = new URLSearchParams()) {
    if ($('filter-interface').value) params.set('interface', $('filter-interface').value);
    if ($('filter-proto').value) params.set('proto', $('filter-proto').value);
    const q = $('filter-q').value.trim();
    if (q) params.set('q', q);
    const text = params.toString();
    return text ? `?${text}` : '';
  }

  /** `YYYY-MM-DDTHH:MM:SS` of Unix ms `ms` in local time, as a datetime-local input holds it. */
  function localInputValue(ms) {
    const local = new Date(ms - new Date(ms).getTimezoneOffset() * 60_000);
    return local.toISOString().slice(0, 19);
  }

  /** The chosen window as [from, to] in Unix ms, or null for live (undefined while incomplete). */
  function chosenWindow() {
    const range = $('range').value;
    if (range === 'live') return null;
    if (range === 'custom') {
      if (!$('range-from').value && !$('range-to').value) {
        // Start from the last hour, in the local time the inputs show.
        const now = Date.now();
        $('range-from').value = localInputValue(now - RANGE_MS['1h']);
        $('range-to').value = localInputValue(now);
      }
      const from = Date.parse($('range-from').value);
      const to = Date.parse($('range-to').value);
      return Number.isFinite(from) && Number.isFinite(to) ? [from, to] : undefined;
    }
    const to = Date.now();
    return [to - RANGE_MS[range], to];
  }

  /** Shows what the time range asks for: the live stream, or a fetched window. */
  function refresh() {
    const window = chosenWindow();
    $('range-custom').hidden = $('range').value !== 'custom';
    if (window === null) {
      connect();
      return;
    }
    clearTimeout(state.retryTimer);
    if (state.source) state.source.close();
    state.source = null;
    if (window === undefined) {
      setStatus('history', 'choose from and to');
      return;
    }
    fetchHistory(window[0], window[1]);
  }

  async function fetchHistory(from, to) {
    const request = ++state.historyRequest;
    setStatus('connecting', 'loading history…');
    const params = new URLSearchParams({ from: String(from), to: String(to) });
    try {
      const res = await fetch(`history.json${filterQuery(params)}`);
      const body = await res.json();
      if (request !== state.historyRequest) return;
      if (!res.ok) {
        setStatus('error', body.error ?? `history failed (${res.status})`);
        return;
      }
      state.snapshot = body;
      setStatus('history', 'history');
      render();
    } catch (err) {
      if (request === state.historyRequest) setStatus('error', `history failed: ${err.message}`);
    }
  }

  /** Offers the history ranges only when the server keeps a flow store. */
  function renderHistoryAvailable(s) {
    if (s.historyAvailable === undefined) return;
    for (const option of $('range').options)
      if (option.value !== 'live') option.disabled = !s.historyAvailable;
    $('range-note').textContent = s.historyAvailable ? '' : 'history is off (no flow store)';
  }

  // EventSource retries on its own after a dropped stream (the server asks for 1 s); when the
  // browser gives up (an HTTP error such as 503), retry here with exponential backoff and jitter.
  function connect() {
    state.historyRequest++;
    clearTimeout(state.retryTimer);
    if (state.source) state.source.close();
    const source = new EventSource(`events${filterQuery()}`);
    state.source = source;
    source.onopen = () => {
      state.retryMs = 1000;
      setStatus(...(state.snapshot?.timeline === 'records' ? ['file', 'file'] : ['live', 'live']));
    };
    source.onmessage = (event) => {
      state.snapshot = JSON.parse(event.data);
      render();
    };
    source.onerror = () => {
      if (source !== state.source) return;
      if (source.readyState === EventSource.CLOSED) {
        const delay = state.retryMs * (0.5 + Math.random() / 2);
        state.retryMs = Math.min(state.retryMs * 2, MAX_RETRY_MS);
        state.retryTimer = setTimeout(connect, delay);
      }
      setStatus('reconnecting', 'reconnecting…');
    };
  }

  function render() {
    const s = state.snapshot;
    if (!s) return;
    $('timeline').textContent =
      s.timeline === 'history' ? 'history' : s.timeline === 'records' ? 'capture timeline' : 'live';
    // A capture file is not live: its badge says so, while it is read and once it is finished.
    if (s.timeline === 'records' && state.source) setStatus('file', 'file');
    renderTotals(s);
    renderHistoryAvailable(s);
    renderInterfaces(s.interfaces);
    renderChart(s);
    renderTable('flows', s.flows, s.topN, flowCells);
    renderTable('talkers', s.talkers, s.topN, talkerCells);
    renderDropping(s);
    const span =
      s.timeline === 'history'
        ? `from ${isoTime(s.fromMs)} to ${isoTime(s.toMs)}`
        : `over the last ${s.topWindowSeconds} s`;
    $('flows-note').textContent =
      `${count(Math.min(s.topN, s.flows.length))} of ${count(s.matchingFlows)} ${span}`;
    $('talkers-note').textContent =
      `${count(Math.min(s.topN, s.talkers.length))} of ${count(s.matchingTalkers)} ${span}`;
    renderHealth(s);
    renderDns(s);
  }

  const isoTime = (ms) => new Date(ms).toISOString().replace('.000Z', 'Z');

  /** Totals in the header: what was seen, and the flows in the view. */
  function renderTotals(s) {
    const h = s.health ?? {};
    const parts = [];
    if (h.packetsSeen !== undefined) parts.push(`${count(h.packetsSeen)} packets`);
    if (h.bytesSeen !== undefined) parts.push(humanBytes(h.bytesSeen));
    parts.push(`${count(s.matchingFlows)} flows`);
    if (h.ringBufferLost) parts.push(`${count(h.ringBufferLost)} dropped`);
    $('totals').textContent = parts.join(' · ');
  }

  function renderInterfaces(names) {
    const select = $('filter-interface');
    const current = select.value;
    const wanted = ['', ...names];
    if (current && !wanted.includes(current)) wanted.push(current);
    const have = [...select.options].map((o) => o.value);
    if (have.join('\n') === wanted.join('\n')) return;
    select.replaceChildren(
      ...wanted.map((name) => {
        const option = document.createElement('option');
        option.value = name;
        option.textContent = name || 'all';
        return option;
      }),
    );
    select.value = current;
  }

  function renderChart(s) {
    const box = $('chart');
    if (s.chart.length === 0) {
      if (state.chart) state.chart.destroy();
      state.chart = null;
      state.chartKey = '';
      const empty = document.createElement('p');
      empty.className = 'empty';
      empty.textContent = 'no traffic in the window';
      box.replaceChildren(empty);
      $('chart-range').textContent = '';
      return;
    }
    box.querySelector('.empty')?.remove();
    const points = s.chart[0].bytesPerSecond.length;
    const step = s.chartStepSeconds ?? 1;
    const xs = new Array(points);
    for (let i = 0; i < points; i++) xs[i] = s.chartStartSecond + i * step;
    const data = [xs, ...s.chart.map((series) => series.bytesPerSecond)];
    const key = s.chart.map((series) => `${series.interface} ${series.direction}`).join('\n');
    const interfaces = [...new Set(s.chart.map((series) => series.interface))];
    if (!state.chart || key !== state.chartKey) {
      if (state.chart) state.chart.destroy();
      box.replaceChildren();
      state.chartKey = key;
      state.chart = new uPlot(
        {
          width: Math.max(box.clientWidth, 300),
          height: CHART_HEIGHT,
          scales: { x: { time: true } },
          // Dragging across the chart zooms into that range (uPlot's x selection); Reset zoom undoes it.
          cursor: { drag: { x: true, y: false, setScale: true } },
          hooks: {
            setSelect: [
              (u) => {
                if (u.select.width > 0) setZoomed(true);
              },
            ],
            setScale: [
              (u, key) => {
                if (key === 'x') showZoomRange(u);
              },
            ],
          },
          series: [
            {},
            ...s.chart.map((series) => ({
              label: `${series.interface} ${series.direction.toLowerCase()}`,
              stroke: DIRECTION_COLORS[series.direction] ?? OTHER_DIRECTION_COLOR,
              dash: DASHES[interfaces.indexOf(series.interface) % DASHES.length],
              width: 1.5,
              value: (_u, v) => (v == null ? '–' : `${humanBytes(v)}/s`),
            })),
          ],
          // Room between tick labels, so times and rates never overlap however long the range.
          axes: [
            { space: 110 },
            { size: 90, space: 40, values: (_u, values) => values.map((v) => `${humanBytes(v)}/s`) },
          ],
        },
        data,
        box,
      );
      setZoomed(false);
    } else {
      // New data keeps a dragged range; without one the chart follows the data.
      state.chart.setData(data, !state.zoomed);
    }
    state.chartData = data;
    $('chart-range').textContent =
      s.timeline === 'history'
        ? `${isoTime(s.fromMs)} to ${isoTime(s.toMs)}, ${step} s steps, per interface and direction`
        : `last ${points} s to ${isoTime(s.endSecond * 1000)}, per interface and direction`;
  }

  /** Says which part of the data the chart shows while it is zoomed. */
  function showZoomRange(u) {
    const { min, max } = u.scales.x;
    $('zoom-range').textContent =
      state.zoomed && min != null && max != null
        ? `zoomed: ${isoTime(min * 1000)} to ${isoTime(max * 1000)}`
        : '';
  }

  function setZoomed(zoomed) {
    state.zoomed = zoomed;
    $('zoom-reset').hidden = !zoomed;
    $('zoom-hint').hidden = zoomed;
    if (state.chart) showZoomRange(state.chart);
  }

  function resetZoom() {
    setZoomed(false);
    if (state.chart && state.chartData) state.chart.setData(state.chartData, true);
  }

  function compareRows(key, desc) {
    const sign = desc ? -1 : 1;
    if (TEXT_KEYS.has(key)) {
      return (a, b) => sign * String(a[key]).localeCompare(String(b[key]), 'en', { numeric: true });
    }
    if (OPTIONAL_KEYS.has(key)) {
      // Rows without the value go last whichever way the column is sorted.
      return (a, b) => {
        if (a[key] === undefined || b[key] === undefined)
          return (a[key] === undefined) - (b[key] === undefined);
        return sign * (a[key] - b[key]);
      };
    }
    return (a, b) => sign * ((a[key] ?? 0) - (b[key] ?? 0));
  }

  function cell(text, title, numeric) {
    const td = document.createElement('td');
    td.textContent = text;
    if (title) td.title = title;
    if (numeric) td.className = 'num';
    return td;
  }

  function flowCells(row) {
    return [
      cell(row.interface),
      cell(row.direction.toLowerCase()),
      cell(row.proto),
      // With --resolve a name replaces the address; the address stays in the tooltip.
      cell(row.srcName ?? row.src, row.srcName ? row.src : ''),
      cell(String(row.srcPort), '', true),
      cell(row.dstName ?? row.dst, row.dstName ? row.dst : ''),
      cell(String(row.dstPort), '', true),
      cell(humanBytes(row.bytes), `${count(row.bytes)} bytes`, true),
      cell(count(row.packets), '', true),
      rttCell(row),
      cell(row.retrans ? count(row.retrans) : '', '', true),
      dropsCell(row),
      cell(row.service || '–'),
      cell(row.crossed),
      cell(row.tunnel),
    ];
  }

  function rttCell(row) {
    if (row.rttNs === undefined) return cell('', 'not measured', true);
    const what = row.rttKind === 'handshake' ? 'handshake time' : 'smoothed RTT of the socket';
    return cell(humanDurationNs(row.rttNs), `${what}: ${count(row.rttNs)} ns`, true);
  }

  function dropsCell(row) {
    if (!row.drops) return cell('', '', true);
    const td = cell(
      count(row.drops),
      `${row.dropReason}: ${count(row.drops)} packets, ${humanBytes(row.dropBytes)}`,
      true,
    );
    td.classList.add('drops');
    return td;
  }

  /** Who is dropping: hosts, then flows, by dropped packets with the latest reason. */
  function renderDropping(s) {
    const dropping = s.dropping ?? { flows: [], hosts: [] };
    const none = dropping.flows.length === 0 && dropping.hosts.length === 0;
    $('dropping-empty').hidden = !none;
    $('dropping-hosts').hidden = dropping.hosts.length === 0;
    $('dropping-flows').hidden = dropping.flows.length === 0;
    $('dropping-note').textContent = none ? '' : `top ${s.dropTopN} by dropped packets`;
    const rows = (id, items, cellsOf) => {
      const body = document.createDocumentFragment();
      for (const item of items) {
        const tr = document.createElement('tr');
        tr.append(...cellsOf(item));
        body.append(tr);
      }
      $(id).tBodies[0].replaceChildren(body);
    };
    rows('dropping-hosts', dropping.hosts, (h) => [
      cell(h.interface),
      cell(h.name ?? h.address, h.name ? h.address : ''),
      cell(count(h.drops), humanBytes(h.dropBytes), true),
      cell(h.dropReason),
    ]);
    rows('dropping-flows', dropping.flows, (f) => [
      cell(
        `${f.proto} ${f.srcName ?? f.src}:${f.srcPort} → ${f.dstName ?? f.dst}:${f.dstPort}`,
        `${f.interface} ${f.direction.toLowerCase()}: ${f.src}:${f.srcPort} → ${f.dst}:${f.dstPort}`,
      ),
      cell(count(f.drops), humanBytes(f.dropBytes), true),
      cell(f.dropReason),
    ]);
  }

  function talkerCells(row) {
    return [
      cell(row.interface),
      cell(row.name ?? row.address, row.name ? row.address : ''),
      cell(count(row.records), '', true),
      cell(humanBytes(row.bytes), `${count(row.bytes)} bytes`, true),
      cell(count(row.packets), '', true),
    ];
  }

  function renderTable(id, rows, topN, cellsOf) {
    const table = $(id);
    const { key, desc } = state.sort[id];
    for (const th of table.tHead.rows[0].cells) {
      th.setAttribute('aria-sort', th.dataset.key === key ? (desc ? 'descending' : 'ascending') : 'none');
    }
    const sorted = [...rows].sort(compareRows(key, desc)).slice(0, topN);
    const body = document.createDocumentFragment();
    for (const row of sorted) {
      const tr = document.createElement('tr');
      tr.append(...cellsOf(row));
      body.append(tr);
    }
    table.tBodies[0].replaceChildren(body);
  }

  /** Milliseconds for people: µs below one, one decimal below ten. */
  const ms = (value) =>
    value < 1
      ? `${Math.round(value * 1000)} µs`
      : value < 10
        ? `${value.toFixed(1)} ms`
        : `${Math.round(value)} ms`;

  /** The DNS panel (DNS tracking): the slowest and the failing names; hidden without DNS. */
  function renderDns(s) {
    const panel = $('dns-panel');
    panel.hidden = !s.dns;
    if (!s.dns) return;
    const rows = (id, list, cellsOf) => {
      const body = document.createDocumentFragment();
      for (const row of list) {
        const tr = document.createElement('tr');
        tr.append(...cellsOf(row));
        body.append(tr);
      }
      $(id).tBodies[0].replaceChildren(body);
    };
    const name = (row) => cell(row.name || '(no name)', row.name);
    rows('dns-slowest', s.dns.slowest, (row) => [
      name(row),
      cell(ms(row.maxLatencyMs), '', true),
      cell(ms(row.meanLatencyMs), '', true),
      cell(count(row.answers), '', true),
      cell(row.rcode),
    ]);
    rows('dns-failing', s.dns.failing, (row) => [
      name(row),
      cell(row.rcode),
      cell(count(row.failures), '', true),
      cell(count(row.unanswered), '', true),
      cell(count(row.malformed), '', true),
      cell(count(row.queries), '', true),
    ]);
    $('dns-note').textContent = `${count(s.dns.names)} names over the last ${s.topWindowSeconds} s`;
  }

  function figure(list, name, label, value) {
    const dt = document.createElement('dt');
    dt.textContent = label;
    const dd = document.createElement('dd');
    dd.dataset.figure = name;
    dd.textContent = value;
    list.push(dt, dd);
  }

  function renderHealth(s) {
    const h = s.health ?? {};
    const items = [];
    if (h.warnings?.length) figure(items, 'warnings', 'Warnings', h.warnings.join('; '));
    if (h.attachedInterfaces) {
      figure(items, 'attached', 'Attached interfaces', h.attachedInterfaces.join(', ') || 'none');
    }
    if (h.agentIp) figure(items, 'agent-ip', 'Agent IP', h.agentIp);
    if (h.filter !== undefined) figure(items, 'filter', 'Filter', h.filter);
    if (h.filterRejected !== undefined && h.filter !== 'none') {
      figure(
        items,
        'filter-verdicts',
        'Filter accepted / rejected',
        `${count(h.filterAccepted)} / ${count(h.filterRejected)}`,
      );
    }
    if (h.uptimeSeconds !== undefined) figure(items, 'uptime', 'Uptime', `${Math.floor(h.uptimeSeconds)} s`);
    if (h.packetsSeen !== undefined) figure(items, 'packets', 'Packets seen', count(h.packetsSeen));
    if (h.bytesSeen !== undefined) figure(items, 'bytes', 'Bytes seen', humanBytes(h.bytesSeen));
    if (h.cachedFlows !== undefined) figure(items, 'cached', 'Flows cached', count(h.cachedFlows));
    if (h.ringBufferLost !== undefined)
      figure(items, 'ring-lost', 'Dropped: ring buffer full', count(h.ringBufferLost));
    if (h.deferredDrains !== undefined) figure(items, 'deferred', 'Deferred drains', count(h.deferredDrains));
    if (h.mapUpdateFailures !== undefined)
      figure(items, 'map-failures', 'Dropped: map inserts failed', count(h.mapUpdateFailures));
    if (h.parseErrors !== undefined) figure(items, 'parse-errors', 'Unparsed packets', count(h.parseErrors));
    if (h.tcpHealth) {
      figure(items, 'kernel-drops', 'Packets the kernel dropped', count(h.tcpHealth.dropPackets));
      figure(items, 'retransmissions', 'TCP segments retransmitted', count(h.tcpHealth.retransSegments));
    }
    for (const e of h.exporters ?? []) {
      figure(
        items,
        `export-errors-${e.name}`,
        `Export errors (${e.name})`,
        `${count(e.flowsFailed)} flows in ${count(e.batchesFailed)} batches`,
      );
      figure(items, `export-drops-${e.name}`, `Export drops (${e.name})`, count(e['queue-full'] + e.stopped));
    }
    if (s.aggregate) {
      figure(items, 'view-records', 'Records in the view', count(s.aggregate.records));
      figure(items, 'view-late', 'Records older than the window', count(s.aggregate.outOfWindow));
      figure(items, 'view-pruned', 'Small flows forgotten (bound)', count(s.aggregate.prunedKeys));
    }
    $('health').replaceChildren(...items);
  }

  function onSortClick(event) {
    const th = event.target.closest('th');
    if (!th) return;
    const id = th.closest('table').id;
    const key = th.dataset.key;
    const sort = state.sort[id];
    if (sort.key === key) sort.desc = !sort.desc;
    else state.sort[id] = { key, desc: !TEXT_KEYS.has(key) };
    render();
  }

  let filterTimer = 0;
  function onFilterChange() {
    clearTimeout(filterTimer);
    filterTimer = setTimeout(refresh, FILTER_DEBOUNCE_MS);
  }

  document.addEventListener('DOMContentLoaded', () => {
    for (const id of ['flows', 'talkers']) $(id).tHead.addEventListener('click', onSortClick);
    $('filter-interface').addEventListener('change', refresh);
    $('filter-proto').addEventListener('change', refresh);
    $('range').addEventListener('change', refresh);
    $('range-show').addEventListener('click', refresh);
    $('zoom-reset').addEventListener('click', resetZoom);
    $('filter-q').addEventListener('input', onFilterChange);
    $('filters').addEventListener('submit', (event) => event.preventDefault());
    window.addEventListener('resize', () => {
      if (state.chart)
        state.chart.setSize({ width: Math.max($('chart').clientWidth, 300), height: CHART_HEIGHT });
    });
    connect();
  });
})();
