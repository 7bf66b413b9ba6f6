/** The doctor report as a person reads it (the CLI's default output). */
import type { DoctorFinding, DoctorReport } from './types.js'

function table (findings: DoctorFinding[], fixable: boolean): string[] {
  const rows = findings.map((f) => [f.schema ?? '-', f.code, ...(fixable ? [f.fixable ? 'yes' : 'no'] : []), f.message])
  const header = ['SCHEMA', 'CODE', ...(fixable ? ['FIXABLE'] : []), 'MESSAGE']
  const widths = header.slice(0, -1).map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)))
  return [header, ...rows].map((r) => r.map((cell, i) => i < widths.length ? cell.padEnd(widths[i] ?? 0) : cell).join('  ').trimEnd())
}

/** A table of the findings (and, after a fix, of what was fixed), then a summary line. */
export function formatDoctorReport (report: DoctorReport, options: { fix?: boolean } = {}): string {
  const lines: string[] = []
  if (options.fix === true) {
    lines.push(report.fixed.length === 0 ? 'fixed: nothing' : `fixed (${report.fixed.length}):`)
    if (report.fixed.length > 0) lines.push(...table(report.fixed, false), '')
  }
  const schemas = `${report.schemas} ${report.schemas === 1 ? 'schema' : 'schemas'} checked`
  if (report.findings.length === 0) {
    lines.push(`${schemas}: no findings`)
  } else {
    const fixable = report.findings.filter((f) => f.fixable).length
    lines.push(...table(report.findings, true), '')
    const n = `${report.findings.length} ${report.findings.length === 1 ? 'finding' : 'findings'}`
    lines.push(options.fix === true
      ? `${schemas}: ${n} left for a person`
      : `${schemas}: ${n}${fixable > 0 ? `, ${fixable} fixable with --fix` : ''}`)
  }
  return lines.join('\n') + '\n'
}
