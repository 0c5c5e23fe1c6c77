/** Reading a flow store's rows back in tests, values as plain JS (numbers, strings, bigints). */
import { plainValue } from '../../src/store/result-format.ts';
import { openStoreReader } from '../../src/store/store-reader.ts';

/** The rows `sql` returns from the store at `file`, each as column name -> plain value. */
export async function storeRows(file: string, sql: string): Promise<Record<string, unknown>[]> {
  const reader = await openStoreReader(file);
  try {
    const result = await reader.connection.runAndReadAll(sql);
    const names = result.columnNames();
    return result.getRows().map((row) => Object.fromEntries(row.map((v, i) => [names[i], plainValue(v)])));
  } finally {
    reader.close();
  }
}
