// The CDK app (`npx cdk synth`, `npx cdk deploy --all`): aigw's regional stacks and edge stack
// from the [deploy] section of aigw.toml (AIGW_CONFIG or `-c config=<path>` picks another file).
import { App } from 'aws-cdk-lib';
import { buildAigwApp } from './aigw-app.js';
import { loadDeployConfig } from './deploy-config.js';

const app = new App();
const configPath = (app.node.tryGetContext('config') as string | undefined) ?? process.env.AIGW_CONFIG ?? 'aigw.toml';
buildAigwApp(app, { config: loadDeployConfig(configPath), account: process.env.CDK_DEFAULT_ACCOUNT });
app.synth();
