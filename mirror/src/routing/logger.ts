/** The slice of a pino logger the routing layer uses (fastify's and pino's loggers fit). */
export interface RoutingLogger {
  debug(object: object, message: string): void;
  info(object: object, message: string): void;
  warn(object: object, message: string): void;
  error(object: object, message: string): void;
}

/** A logger that drops everything (the default in tests and embedded use). */
export const silentLogger: RoutingLogger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
};
