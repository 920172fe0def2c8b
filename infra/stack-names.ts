// The names of aigw's CloudFormation stacks, shared by the CDK app and the `aigw deploy` command
// (which must not load the CDK to run its checks). No CDK imports here.

export function regionalStackName(region: string): string {
  return `Aigw-${region}`;
}

export const EDGE_STACK_NAME = 'Aigw-Edge';

/**
 * CloudFront's own region: Lambda@Edge functions and viewer certificates must live here, and
 * so does the origin secret, whose value CloudFormation resolves into the distribution.
 */
export const EDGE_REGION = 'us-east-1';
