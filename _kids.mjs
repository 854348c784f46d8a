import fs from 'node:fs';
import { TraceMap, originalPositionFor } from '@jridgewell/trace-mapping';
const [prof, bundle, fname] = process.argv.slice(2);
const p = JSON.parse(fs.readFileSync(prof)); const map = new TraceMap(JSON.parse(fs.readFileSync(bundle + '.map', 'utf8')));
const byId = new Map(p.nodes.map((n) => [n.id, n]));
const selfT = new Map(); for (let i = 0; i < p.samples.length; i++) selfT.set(p.samples[i], (selfT.get(p.samples[i]) ?? 0) + p.timeDeltas[i]);
const incl = new Map(); const visit = (id) => { const n = byId.get(id); let t = selfT.get(id) ?? 0; for (const c of n.children ?? []) t += visit(c); incl.set(id, t); return t; }; visit(p.nodes[0].id);
const nm = (n) => { const cf = n.callFrame; if (!cf.url.includes('index-')) return cf.functionName; const o = originalPositionFor(map, { line: cf.lineNumber + 1, column: cf.columnNumber }); return `${cf.functionName} ${(o.source ?? '?').replace(/^.*node_modules\//, '').replace(/^.*?src\//, 'src/')}:${o.line}`; };
const agg = new Map();
for (const n of p.nodes) if (n.callFrame.functionName === fname) for (const c of n.children ?? []) { const k = nm(byId.get(c)); agg.set(k, (agg.get(k) ?? 0) + incl.get(c)); }
console.log([...agg].sort((a, b) => b[1] - a[1]).slice(0, 25).map(([k, v]) => `${(v / 1000).toFixed(0).padStart(6)} ${k}`).join('\n'));
