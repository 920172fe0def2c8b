// cdk-nag (AWS's rule packs) on aigw's app: AwsSolutions and Serverless run at every synth, and
// any finding not acknowledged here, next to the construct it concerns, fails the synth.
import { Validations, type App } from 'aws-cdk-lib';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import { AwsSolutionsChecks, ServerlessChecks } from 'cdk-nag';
import type { IConstruct } from 'constructs';

/** Adds the rule packs to the app; `cdk synth` then fails on any unacknowledged finding. */
export function addRulePacks(app: App): void {
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app), new ServerlessChecks(app));
}

/** Acknowledges one finding on a construct and everything under it; the reason is one line. */
export function acknowledge(scope: IConstruct, id: string, reason: string): void {
  Validations.of(scope).acknowledge({ id, reason });
}

/** The findings every aigw Lambda function has on purpose. */
export function acknowledgeFunction(fn: IFunction): void {
  const runtime = 'nodejs22.x is the runtime aigw is built and tested on (DESIGN.md); a newer one is a deliberate upgrade';
  acknowledge(fn, 'AwsSolutions-L1', runtime);
  acknowledge(fn, 'Serverless-LambdaLatestVersion', runtime);
  acknowledge(fn, 'Serverless-LambdaDLQ', 'invoked synchronously (function URL, CloudFront): a dead-letter queue only receives failed asynchronous invocations');
  acknowledge(fn, 'Serverless-LambdaTracing', 'requests are traced by request id in logs and EMF metrics; X-Ray would bill every request and need xray:* on *');
}
