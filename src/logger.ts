/**
 * A pino-compatible logger shape. The client is silent by default; pass `pino()` or any object with
 * these methods. User loggers are wrapped so that a throwing logger can never break the client.
 */
export interface Logger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

const noop = (): void => {};

export const silentLogger: Logger = { debug: noop, info: noop, warn: noop, error: noop };

/** Wraps a user logger: exceptions thrown by it are swallowed, missing methods become no-ops. */
export function safeLogger(logger: Partial<Logger> | undefined): Logger {
  if (!logger) return silentLogger;
  const wrap =
    (level: keyof Logger) =>
    (obj: object, msg?: string): void => {
      try {
        logger[level]?.call(logger, obj, msg);
      } catch {
        // A broken logger must not take the client down; there is nowhere better to report it.
      }
    };
  return { debug: wrap('debug'), info: wrap('info'), warn: wrap('warn'), error: wrap('error') };
}
