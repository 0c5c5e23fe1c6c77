/** What the web view's HTTP parts share: the headers of every response and the server's counters. */

/** Headers every response of the web view carries. */
export const COMMON_HEADERS = {
  'cache-control': 'no-cache',
  'x-content-type-options': 'nosniff',
  // uPlot sizes its elements through inline styles; scripts come only from this server.
  'content-security-policy': "default-src 'self'; style-src 'self' 'unsafe-inline'",
};

/** Counters of the server side, shown with the snapshot's own. */
export interface WebServerStats {
  /** Snapshots written to event streams. */
  pushes: number;
  /** Pushes skipped because a client had not read the previous ones. */
  skippedSlowClient: number;
  /** Streams refused because `maxClients` were open. */
  refusedClients: number;
  /** Requests answered 400 (bad filter) or 404/405. */
  badRequests: number;
}
