/**
 * Worker thread of {@link LinkMonitorWatcher}: blocks in poll() on the rtnetlink socket the main
 * thread opened (and a wake-up pipe), and posts the number of link events each time some arrive.
 * Blocking here keeps the main event loop and libuv's thread pool free. Ends when the pipe is
 * written (stop) or on an error, which it posts as `{ error }` first.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { drainSocket, RECEIVE_BUFFER_BYTES, waitReadable } from '../netlink/socket.ts';

/** What the main thread hands the worker. */
export interface LinkEventsWorkerData {
  /** Non-blocking NETLINK_ROUTE socket subscribed to RTMGRP_LINK. */
  socketFd: number;
  /** Read end of the wake-up pipe. */
  wakeFd: number;
}

/** A message from the worker: events arrived, or it failed. */
export type LinkEventsMessage = { events: number } | { error: string };

const { socketFd, wakeFd } = workerData as LinkEventsWorkerData;
const buffer = Buffer.alloc(RECEIVE_BUFFER_BYTES);
try {
  for (;;) {
    const ready = waitReadable(socketFd, wakeFd);
    if (ready === 'wake') break;
    if (ready !== 'data') continue;
    const events = drainSocket(socketFd, buffer);
    if (events > 0) parentPort?.postMessage({ events } satisfies LinkEventsMessage);
  }
} catch (err) {
  parentPort?.postMessage({ error: (err as Error).message } satisfies LinkEventsMessage);
}
