/** DuckDB's errors on opening a store file, as StoreErrors that say what to do. */
import { StoreError } from '../errors.ts';

/** A StoreError for a failure to open `file`, keeping DuckDB's own words in the message. */
export function describeOpenError(file: string, err: unknown): StoreError {
  const detail = err instanceof Error ? err.message : String(err);
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  let advice: string;
  if (/Could not set lock|Conflicting lock/i.test(detail)) {
    advice =
      'it is open for writing in another process (a running flowtap agent): stop it, or set STORE_PATH ' +
      'to another directory; `flowtap query` reads while the agent writes';
  } else if (
    /not a valid DuckDB database|corrupt|checksum|serializ|Invalid Input Error|version/i.test(detail)
  ) {
    advice =
      'it is damaged or not a flowtap store: move it away (flowtap starts a new one) or set STORE_PATH';
  } else if (
    code === 'EACCES' ||
    code === 'EROFS' ||
    /Permission denied|Read-only file system/i.test(detail)
  ) {
    advice = 'flowtap may not write there: run as root or set STORE_PATH to a writable directory';
  } else {
    advice = 'check the path and the disk, or set STORE_PATH to another directory';
  }
  return new StoreError(file, `cannot open the flow store ${file}: ${advice} (${detail})`, { cause: err });
}
