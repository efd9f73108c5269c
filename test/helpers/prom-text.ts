/**
 * A strict parser of the Prometheus text exposition format (0.0.4), for the hub's `/metrics` tests
 * (prom-client has no parser). Every line must be a `# HELP`, a `# TYPE`, a sample or empty; a sample's
 * family must be declared by a `# TYPE` before it, once; label values are unescaped; histograms must have
 * cumulative buckets ending in `le="+Inf"` equal to `_count`. Anything else throws, naming the line.
 */

export type MetricType = 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Family {
  name: string;
  type: MetricType;
  help: string;
  samples: Sample[];
}

const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
const HELP = new RegExp(`^# HELP (${NAME}) (.*)$`);
const TYPE = new RegExp(`^# TYPE (${NAME}) (counter|gauge|histogram|summary|untyped)$`);
const SAMPLE = new RegExp(`^(${NAME})(?:\\{(.*)\\})? (\\S+)(?: (-?\\d+))?$`);
const LABEL = /^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)/;
// Prometheus reads values with Go's strconv.ParseFloat: NaN and Inf in any case (prom-client writes `Nan`).
const VALUE = /^(?:[+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)|[+-]?inf|nan)$/i;

function parseValue(text: string, line: number): number {
  if (!VALUE.test(text)) throw new Error(`line ${line}: bad value '${text}'`);
  const lower = text.toLowerCase();
  if (lower === 'nan') return Number.NaN;
  if (lower.endsWith('inf')) return lower.startsWith('-') ? Number.NEGATIVE_INFINITY : Number.POSITIVE_INFINITY;
  return Number(text);
}

function parseLabels(text: string, line: number): Record<string, string> {
  const labels: Record<string, string> = {};
  let rest = text;
  while (rest.length > 0) {
    const m = LABEL.exec(rest);
    if (m === null) throw new Error(`line ${line}: bad labels '${text}'`);
    if (Object.hasOwn(labels, m[1]!)) throw new Error(`line ${line}: label ${m[1]} twice`);
    labels[m[1]!] = m[2]!.replace(/\\(["\\n])/g, (_, c: string) => (c === 'n' ? '\n' : c));
    rest = rest.slice(m[0].length);
  }
  return labels;
}

/** The family a sample belongs to: its own name, or the histogram/summary it is a part of. */
function familyOf(name: string, families: Map<string, Family>): Family | undefined {
  const own = families.get(name);
  if (own !== undefined) return own;
  const m = /^(.*)_(bucket|sum|count)$/.exec(name);
  const parent = m === null ? undefined : families.get(m[1]!);
  if (parent === undefined) return undefined;
  if (parent.type === 'histogram' || (parent.type === 'summary' && m![2] !== 'bucket')) return parent;
  return undefined;
}

export function parsePrometheusText(text: string): Map<string, Family> {
  if (!text.endsWith('\n')) throw new Error('the exposition must end with a newline');
  const families = new Map<string, Family>();
  const helps = new Map<string, string>();
  const lines = text.split('\n');
  lines.pop();
  lines.forEach((raw, i) => {
    const n = i + 1;
    if (raw === '') return;
    let m = HELP.exec(raw);
    if (m !== null) {
      if (helps.has(m[1]!)) throw new Error(`line ${n}: second HELP for ${m[1]}`);
      helps.set(m[1]!, m[2]!);
      return;
    }
    m = TYPE.exec(raw);
    if (m !== null) {
      if (families.has(m[1]!)) throw new Error(`line ${n}: second TYPE for ${m[1]}`);
      families.set(m[1]!, { name: m[1]!, type: m[2] as MetricType, help: helps.get(m[1]!) ?? '', samples: [] });
      return;
    }
    if (raw.startsWith('#')) throw new Error(`line ${n}: unknown comment '${raw}'`);
    m = SAMPLE.exec(raw);
    if (m === null) throw new Error(`line ${n}: not a sample '${raw}'`);
    const family = familyOf(m[1]!, families);
    if (family === undefined) throw new Error(`line ${n}: sample ${m[1]} before any TYPE of its family`);
    family.samples.push({ name: m[1]!, labels: m[2] === undefined ? {} : parseLabels(m[2], n), value: parseValue(m[3]!, n) });
  });
  for (const family of families.values()) if (family.type === 'histogram') checkHistogram(family);
  return families;
}

function checkHistogram(family: Family): void {
  const series = new Map<string, { buckets: Sample[]; count?: number; sum?: number }>();
  for (const s of family.samples) {
    const { le, ...rest } = s.labels;
    const key = JSON.stringify(Object.entries(rest).sort());
    let entry = series.get(key);
    if (entry === undefined) {
      entry = { buckets: [] };
      series.set(key, entry);
    }
    if (s.name === `${family.name}_bucket`) {
      if (le === undefined) throw new Error(`${family.name}: a bucket without le`);
      entry.buckets.push(s);
    } else if (s.name === `${family.name}_count`) entry.count = s.value;
    else if (s.name === `${family.name}_sum`) entry.sum = s.value;
    else throw new Error(`${family.name}: unexpected sample ${s.name}`);
  }
  for (const [key, entry] of series) {
    if (entry.count === undefined || entry.sum === undefined) throw new Error(`${family.name}${key}: no _count or _sum`);
    let previous = -1;
    let previousValue = 0;
    for (const b of entry.buckets) {
      const le = b.labels.le === '+Inf' ? Number.POSITIVE_INFINITY : Number(b.labels.le);
      if (!(le > previous) || b.value < previousValue) throw new Error(`${family.name}${key}: buckets not cumulative at le=${b.labels.le}`);
      previous = le;
      previousValue = b.value;
    }
    const inf = entry.buckets.at(-1);
    if (inf?.labels.le !== '+Inf' || inf.value !== entry.count) throw new Error(`${family.name}${key}: the +Inf bucket must equal _count`);
  }
}

/** The value of the one sample of `name` whose labels include `labels`; throws when there is none or more. */
export function sampleValue(families: Map<string, Family>, name: string, labels: Record<string, string> = {}): number {
  const family = familyOf(name, families);
  const found = (family?.samples ?? []).filter(
    (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  );
  if (found.length !== 1) throw new Error(`${found.length} samples of ${name}${JSON.stringify(labels)}`);
  return found[0]!.value;
}

/** Every sample of `name` (a family's own name, or `<histogram>_count` etc.). */
export function samplesOf(families: Map<string, Family>, name: string): Sample[] {
  return (familyOf(name, families)?.samples ?? []).filter((s) => s.name === name);
}
