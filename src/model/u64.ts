/**
 * Unsigned 64-bit values (byte and packet counters, nanosecond times) travel as two 32-bit
 * words, low first, in rows and on the wire: 2^32 is the weight of the high word.
 */

/** 2^32: the weight of a u64's high 32-bit word, and one past the largest u32. */
export const TWO_POW_32 = 4_294_967_296;
