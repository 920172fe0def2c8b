// The CDK app (`npx cdk synth`, `npm run deploy`): aigw's regional stacks and edge stack from the
// [deploy] section of aigw.toml (AIGW_CONFIG or `-c config=<path>` picks another file), checked
// by cdk-nag's AwsSolutions and Serverless packs at every synth.
import { App } from 'aws-cdk-lib';
import { buildAigwApp } from './aigw-app.js';
import { loadDeployConfig } from './deploy-config.js';
import { GATEWAY_URLS_CONTEXT, parseGatewayUrls } from './deploy-steps.js';
import { addRulePacks } from './rule-packs.js';

const app = new App();
const configPath = (app.node.tryGetContext('config') as string | undefined) ?? process.env.AIGW_CONFIG ?? 'aigw.toml';
const config = loadDeployConfig(configPath);
buildAigwApp(app, {
  config,
  account: process.env.CDK_DEFAULT_ACCOUNT,
  gatewayUrls: parseGatewayUrls(app.node.tryGetContext(GATEWAY_URLS_CONTEXT), config.regions),
});
addRulePacks(app);
app.synth();
