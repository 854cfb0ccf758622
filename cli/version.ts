/** kv's version, printed by `kv --version`. */
export const VERSION = "0.1.0";
