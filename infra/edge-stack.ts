import { Annotations, ArnFormat, CfnOutput, Duration, Fn, RemovalPolicy, Stack, Token, type StackProps } from 'aws-cdk-lib';
import { Certificate } from 'aws-cdk-lib/aws-certificatemanager';
import {
  AllowedMethods,
  CachePolicy,
  Distribution,
  HttpVersion,
  LambdaEdgeEventType,
  OriginProtocolPolicy,
  OriginRequestPolicy,
  OriginSslPolicy,
  SecurityPolicyProtocol,
  ViewerProtocolPolicy,
  experimental,
  type EdgeLambda,
} from 'aws-cdk-lib/aws-cloudfront';
import { HttpOrigin } from 'aws-cdk-lib/aws-cloudfront-origins';
import { CompositePrincipal, PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Code, Runtime } from 'aws-cdk-lib/aws-lambda';
import { LogGroup, type RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Secret } from 'aws-cdk-lib/aws-secretsmanager';
import type { Construct } from 'constructs';
import type { DeployConfig } from './deploy-config.js';
import { EDGE_LOG_GROUP_NAME, originSelectorSource } from './edge-origin-selector.js';
import { ORIGIN_SECRET_HEADER, ORIGIN_SECRET_NAME } from './origin-protection.js';
import { acknowledge, acknowledgeFunction } from './rule-packs.js';
import { EDGE_REGION } from './stack-names.js';
import { DATA_REMOVAL_POLICY, logBucket } from './storage.js';

export { EDGE_REGION } from './stack-names.js';

/** Why `[deploy] require_tls12` refuses the default certificate; the synth fails with this. */
export const TLS12_REQUIRES_DOMAIN =
  '[deploy] require_tls12 = true, but no domain_name and certificate_arn are set: the default *.cloudfront.net ' +
  "certificate comes with CloudFront's TLSv1 viewer policy, which can't be changed, so viewers could connect " +
  'with TLS 1.0 or 1.1. Set domain_name and certificate_arn (an ACM certificate in us-east-1) to get the ' +
  'TLSv1.2_2021 policy, or set require_tls12 = false to accept TLSv1 on the default domain.';

/** Throws TLS12_REQUIRES_DOMAIN when require_tls12 is on and no custom domain is configured. */
export function assertTlsPolicy(config: DeployConfig): void {
  if (config.requireTls12 && !config.customDomain) throw new Error(TLS12_REQUIRES_DOMAIN);
}

/**
 * 60 s is the most CloudFront allows without a quota raise. It bounds the wait for the first
 * byte and every gap between bytes, so a cold model function that needs longer to load its
 * package before the first token needs the quota ("Response timeout per origin") raised to 180 s.
 */
export const ORIGIN_READ_TIMEOUT = Duration.seconds(60);
export const ORIGIN_KEEPALIVE_TIMEOUT = Duration.seconds(60);

export interface GatewayOrigin {
  readonly region: string;
  /**
   * The regional gateway function URL (https://<id>.lambda-url.<region>.on.aws/): a literal from
   * the deployed regional stack (`npm run deploy`), or a reference resolved at deploy time.
   */
  readonly url: string;
}

export interface EdgeStackProps extends StackProps {
  readonly config: DeployConfig;
  /** One per configured region, in config order (the primary first). */
  readonly gatewayOrigins: readonly GatewayOrigin[];
}

/** The host part of a function URL, as CloudFront wants an origin's domain name. */
function urlHost(url: string): string {
  return Token.isUnresolved(url) ? Fn.select(2, Fn.split('/', url)) : new URL(url).host;
}

/** The CloudFront distribution in front of the regional gateways, and the origin secret. */
export class EdgeStack extends Stack {
  readonly distribution: Distribution;
  readonly originSecret: Secret;

  constructor(scope: Construct, id: string, props: EdgeStackProps) {
    super(scope, id, props);
    const { config, gatewayOrigins } = props;
    if (gatewayOrigins.length === 0) throw new RangeError('the edge stack needs at least one gateway origin');
    const custom = config.customDomain;
    assertTlsPolicy(config);

    this.originSecret = new Secret(this, 'OriginSecret', {
      secretName: ORIGIN_SECRET_NAME,
      description: `Value of the ${ORIGIN_SECRET_HEADER} header CloudFront sends to the aigw gateways`,
      generateSecretString: { passwordLength: 64, excludePunctuation: true, includeSpace: false },
      replicaRegions: gatewayOrigins
        .map((origin) => origin.region)
        .filter((region) => region !== this.region)
        .map((region) => ({ region })),
      removalPolicy: RemovalPolicy.DESTROY,
    });
    acknowledge(
      this.originSecret,
      'AwsSolutions-SMG4',
      'rotating it means redeploying CloudFront with the new value; the procedure is in infra/origin-protection.ts',
    );

    const domains = gatewayOrigins.map((origin) => urlHost(origin.url));
    const origin = new HttpOrigin(domains[0]!, {
      protocolPolicy: OriginProtocolPolicy.HTTPS_ONLY,
      originSslProtocols: [OriginSslPolicy.TLS_V1_2],
      readTimeout: ORIGIN_READ_TIMEOUT,
      keepaliveTimeout: ORIGIN_KEEPALIVE_TIMEOUT,
      // Resolved by CloudFormation at deploy time: the value never appears in the template.
      customHeaders: { [ORIGIN_SECRET_HEADER]: this.originSecret.secretValue.unsafeUnwrap() },
    });

    const edgeLambdas: EdgeLambda[] = [];
    if (gatewayOrigins.length > 1) {
      const source = originSelectorSource(
        gatewayOrigins.map((gateway) => gateway.region),
        domains,
      );
      const selector = new experimental.EdgeFunction(this, 'OriginSelector', {
        runtime: Runtime.NODEJS_22_X,
        role: this.originSelectorRole(gatewayOrigins.map((gateway) => gateway.region)),
        logGroup: new LogGroup(this, 'OriginSelectorLogs', {
          logGroupName: EDGE_LOG_GROUP_NAME,
          retention: config.logRetentionDays as RetentionDays,
          removalPolicy: DATA_REMOVAL_POLICY,
        }),
        handler: 'index.handler',
        code: Code.fromInline(source),
        memorySize: 128,
        timeout: Duration.seconds(5),
        description: 'aigw: route each viewer to the nearest gateway region',
      });
      edgeLambdas.push({ functionVersion: selector.currentVersion, eventType: LambdaEdgeEventType.ORIGIN_REQUEST });
      acknowledgeFunction(selector);
    }

    const accessLogs = logBucket(this, 'AccessLogs', config.logRetentionDays, { aclDelivery: true });
    this.distribution = new Distribution(this, 'Distribution', {
      // The rotation number is part of the distribution so that raising it updates the
      // distribution and makes CloudFormation resolve the origin secret again.
      comment: `aigw gateway (origin secret rotation ${config.originSecretRotation})`,
      defaultBehavior: {
        origin,
        allowedMethods: AllowedMethods.ALLOW_ALL,
        cachePolicy: CachePolicy.CACHING_DISABLED,
        originRequestPolicy: OriginRequestPolicy.ALL_VIEWER_EXCEPT_HOST_HEADER,
        viewerProtocolPolicy: ViewerProtocolPolicy.HTTPS_ONLY,
        // Compression would hold back server-sent events until a block fills.
        compress: false,
        edgeLambdas,
      },
      httpVersion: HttpVersion.HTTP2_AND_3,
      // Standard logs: one line per viewer request, kept as long as the log groups.
      logBucket: accessLogs,
      logFilePrefix: 'cloudfront/',
      ...(custom
        ? {
            domainNames: [custom.domainName],
            certificate: Certificate.fromCertificateArn(this, 'Certificate', custom.certificateArn),
            minimumProtocolVersion: SecurityPolicyProtocol.TLS_V1_2_2021,
          }
        : {}),
    });
    if (!custom) {
      // Only reached with require_tls12 = false: the operator chose the default domain knowingly.
      const reason = 'require_tls12 = false: the operator accepted the *.cloudfront.net certificate, whose TLSv1 viewer policy AWS fixes';
      Annotations.of(this).addWarningV2(
        'aigw:defaultCertificate',
        'No [deploy] domain_name/certificate_arn: the distribution uses the *.cloudfront.net certificate, ' +
          'whose viewer TLS policy AWS fixes at TLSv1; set a custom domain to enforce TLSv1.2_2021.',
      );
      acknowledge(this, 'Annotation::aigw:defaultCertificate', reason);
      acknowledge(this.distribution, 'AwsSolutions-CFR4', reason);
    }
    acknowledge(this.distribution, 'AwsSolutions-CFR1', 'an API for the operator\'s clients anywhere; who may call it is decided by API keys, not by country');
    acknowledge(
      this.distribution,
      'AwsSolutions-CFR2',
      'rate limits and key checks run in the gateway; a WAF web ACL can be attached by the operator, and function URLs can\'t take one',
    );
    if (Token.isUnresolved(gatewayOrigins[0]!.url)) {
      Annotations.of(this).addInfo(
        'Gateway origins are read with Fn::GetStackOutput, which CloudFormation resolves only when the distribution ' +
          'changes: deploy with `npm run deploy`, which passes the deployed URLs, so a replaced gateway URL updates CloudFront.',
      );
    }

    new CfnOutput(this, 'GatewayEndpoint', {
      value: `https://${custom ? custom.domainName : this.distribution.distributionDomainName}/v1`,
      description: 'OpenAI-compatible base URL',
    });
    new CfnOutput(this, 'DistributionId', { value: this.distribution.distributionId });
    new CfnOutput(this, 'AccessLogBucketName', { value: accessLogs.bucketName, description: 'CloudFront standard logs (cloudfront/)' });
  }

  /**
   * The selector's role: it only writes its log group, in the regions where that group exists
   * (no logs:CreateLogGroup, so no group without retention can appear elsewhere).
   */
  private originSelectorRole(gatewayRegions: readonly string[]): Role {
    const role = new Role(this, 'OriginSelectorRole', {
      assumedBy: new CompositePrincipal(new ServicePrincipal('lambda.amazonaws.com'), new ServicePrincipal('edgelambda.amazonaws.com')),
    });
    const regions = [...new Set([EDGE_REGION, ...gatewayRegions])];
    role.addToPolicy(
      new PolicyStatement({
        actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        resources: regions.map((region) =>
          this.formatArn({ service: 'logs', region, resource: 'log-group', resourceName: `${EDGE_LOG_GROUP_NAME}:*`, arnFormat: ArnFormat.COLON_RESOURCE_NAME }),
        ),
      }),
    );
    for (const region of regions) {
      acknowledge(
        role,
        `AwsSolutions-IAM5[Resource::arn:${this.partition}:logs:${region}:<AWS::AccountId>:log-group:${EDGE_LOG_GROUP_NAME}:*]`,
        'log streams are named by Lambda at run time: the grant is every stream of the one log group',
      );
    }
    return role;
  }
}
