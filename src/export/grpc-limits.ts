/** Limits of flowtap's gRPC collector, in a module light enough for the CLI to load at start-up. */

/** Default bound on one request: a 10 000-flow message is about 1.2 MB. */
export const DEFAULT_MAX_RECEIVE_MESSAGE_BYTES = 16 * 1024 * 1024;
