// config: aigw.toml (plus AIGW_<SECTION>_<KEY> environment overrides) turned into one typed,
// validated AigwConfig; an invalid value fails at start with the offending key named.
export * from './config-schema.js';
export * from './load-config.js';
export * from './model-entries.js';
