// infra: the CDK app that deploys aigw (regional stacks, edge stack, monitoring) and the small
// contracts its Lambda functions share with it (environment names, metric names, origin secret).
export { buildAigwApp, EDGE_STACK_NAME, regionalStackName, type AigwAppOptions, type AigwStacks } from './aigw-app.js';
export {
  deployConfigFrom,
  DeployConfigError,
  loadDeployConfig,
  LOG_RETENTION_DAYS,
  parseDeployConfig,
  type DeployConfig,
  type LambdaArchitecture,
  type ModelDeployment,
} from './deploy-config.js';
export { EDGE_LOG_GROUP_NAME, originSelectorSource } from './edge-origin-selector.js';
export {
  assertTlsPolicy,
  EDGE_REGION,
  EdgeStack,
  ORIGIN_KEEPALIVE_TIMEOUT,
  ORIGIN_READ_TIMEOUT,
  TLS12_REQUIRES_DOMAIN,
  type EdgeStackProps,
  type GatewayOrigin,
} from './edge-stack.js';
export * from './concurrency-quota.js';
export * from './deploy-steps.js';
export { functionBundling, LAYER_PROVIDED_MODULES } from './function-bundling.js';
export { GATEWAY_ENV, MODEL_CACHE_DIR, MODEL_ENV, readModelFunctionUrls, type ModelFunctionUrl } from './function-env.js';
export * from '../src/telemetry/metric-names.js';
export { GatewayAlarms, GatewayDashboard } from './monitoring.js';
export { lambdaArchitecture, onnxruntimeLayer } from './onnxruntime-layer.js';
export { ORIGIN_SECRET_ACCEPTED_STAGES, ORIGIN_SECRET_HEADER, ORIGIN_SECRET_NAME } from './origin-protection.js';
export { distanceKm, isKnownRegion, nearestRegion, nearestRegionTable, REGION_LOCATIONS } from './regions.js';
export { GATEWAY_TABLE_ACTIONS, RegionalStack, type FunctionEntries, type RegionalStackProps } from './regional-stack.js';
export { acknowledge, acknowledgeFunction, addRulePacks } from './rule-packs.js';
export { DATA_REMOVAL_POLICY, logBucket, privateBucketProps } from './storage.js';
