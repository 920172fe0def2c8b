// How function URLs are kept from being called around CloudFront: a secret header CloudFront
// adds to every origin request, which the gateway compares in constant time. No CDK imports here.

/**
 * CloudFront adds this header (a custom origin header, never visible to viewers) to requests
 * it sends to the gateway function URLs. Origin access control can't be used instead: it only
 * signs POST bodies that clients hash themselves, which OpenAI clients don't.
 */
export const ORIGIN_SECRET_HEADER = 'x-aigw-origin-secret';

/**
 * Secrets Manager secret holding the header value: generated in the edge stack's region and
 * replicated to every gateway region, where the gateway reads its local replica by this name.
 *
 * Rotation, without dropping a request:
 * 1. `aws secretsmanager put-secret-value --secret-id aigw/origin-secret --secret-string "$(openssl rand -hex 32)"`
 *    (in the edge stack's region). The new value becomes AWSCURRENT, the old one AWSPREVIOUS;
 *    gateways accept both, re-reading the secret after their short cache expires.
 * 2. Raise `origin_secret_rotation` under [deploy] in aigw.toml and `npx cdk deploy` the edge stack:
 *    the changed number updates the distribution, so CloudFormation resolves the secret again
 *    (it never re-resolves a dynamic reference in an unchanged resource) and CloudFront sends the
 *    new value.
 * 3. Once the distribution is deployed, the previous value may be retired by the next rotation.
 */
export const ORIGIN_SECRET_NAME = 'aigw/origin-secret';

/** Version stages a gateway accepts while a rotation propagates to CloudFront. */
export const ORIGIN_SECRET_ACCEPTED_STAGES = ['AWSCURRENT', 'AWSPREVIOUS'] as const;
