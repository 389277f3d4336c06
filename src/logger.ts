import pino, { type Logger } from 'pino'

/**
 * JSON lines on stdout. Headers that carry credentials are redacted as a backstop; request
 * logging itself never includes headers or query strings (they can hold tokens).
 */
export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'wcr-recordings' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: {
        paths: [
          'req.headers.authorization',
          'req.headers.cookie',
          'headers.authorization',
          'authorization',
          'token',
          'secret',
        ],
        censor: '[redacted]',
      },
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  )
}
