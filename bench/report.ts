import { execFileSync } from 'node:child_process'
import os from 'node:os'

export interface Row {
  measure: string
  ours: string
  reference: string
  ratio: string
  target: string
  pass: boolean
}

/** A throughput row: higher is better, the target is a minimum share of the reference. */
export function rateRow(
  measure: string,
  ours: number,
  reference: number,
  unit: string,
  minRatio: number,
): Row {
  const ratio = ours / reference
  return {
    measure,
    ours: `${format(ours)} ${unit}`,
    reference: `${format(reference)} ${unit}`,
    ratio: ratio.toFixed(2),
    target: `≥ ${minRatio}`,
    pass: ratio >= minRatio,
  }
}

/** A cost row: lower is better, the target is a maximum multiple of the reference. */
export function costRow(
  measure: string,
  ours: number,
  reference: number,
  unit: string,
  maxRatio: number,
): Row {
  const ratio = ours / reference
  return {
    measure,
    ours: `${format(ours)} ${unit}`,
    reference: `${format(reference)} ${unit}`,
    ratio: ratio.toFixed(2),
    target: `≤ ${maxRatio}`,
    pass: ratio <= maxRatio,
  }
}

/** A memory row: growth of RSS over a baseline, against an absolute budget. */
export function growthRow(
  measure: string,
  peakBytes: number,
  baselineBytes: number,
  budgetMb: number,
): Row {
  const growthMb = (peakBytes - baselineBytes) / 1e6
  return {
    measure,
    ours: `+${growthMb.toFixed(1)} MB (peak ${(peakBytes / 1e6).toFixed(0)} MB)`,
    reference: `${(baselineBytes / 1e6).toFixed(0)} MB before`,
    ratio: '—',
    target: `< ${budgetMb} MB growth`,
    pass: growthMb < budgetMb,
  }
}

export function renderTable(rows: Row[]): string {
  const header = ['measure', 'ours', 'reference', 'ratio', 'target', 'result']
  const lines = rows.map((r) => [
    r.measure,
    r.ours,
    r.reference,
    r.ratio,
    r.target,
    r.pass ? 'PASS' : 'FAIL',
  ])
  return [header, header.map(() => '---'), ...lines].map((c) => `| ${c.join(' | ')} |`).join('\n')
}

/** The machine a run happened on, for reading its figures later. */
export function describeMachine(extra: Record<string, string>): string {
  const uname = execFileSync('uname', ['-a']).toString().trim()
  const facts: Record<string, string> = {
    date: new Date().toISOString(),
    'uname -a': uname,
    nproc: execFileSync('nproc').toString().trim(),
    memory: `${(os.totalmem() / 1024 ** 3).toFixed(1)} GiB`,
    node: process.version,
    'load average at start (1/5/15 min)': os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' '),
    ...extra,
  }
  return Object.entries(facts)
    .map(([key, value]) => `- ${key}: ${value}`)
    .join('\n')
}

function format(value: number): string {
  return value >= 100 ? value.toFixed(0) : value.toFixed(1)
}
