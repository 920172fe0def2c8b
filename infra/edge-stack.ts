import { Annotations, CfnOutput, Duration, Fn, RemovalPolicy, Stack, type StackProps } from 'aws-cdk-lib';
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
import { Code, Runtime } from 'aws-cdk-lib/aws-lambda';
import { Secret } from 'aws-cdk-lib/aws-secretsmanager';
import type { Construct } from 'constructs';
import type { DeployConfig } from './deploy-config.js';
import { originSelectorSource } from './edge-origin-selector.js';
import { ORIGIN_SECRET_HEADER, ORIGIN_SECRET_NAME } from './origin-protection.js';

/**
 * CloudFront's own region: Lambda@Edge functions and viewer certificates must live here, and
 * so does the origin secret, whose value CloudFormation resolves into the distribution.
 */
export const EDGE_REGION = 'us-east-1';

/**
 * 60 s is the most CloudFront allows without a quota raise. It bounds the wait for the first
 * byte and every gap between bytes, so a cold model function that needs longer to load its
 * package before the first token needs the quota ("Response timeout per origin") raised to 180 s.
 */
export const ORIGIN_READ_TIMEOUT = Duration.seconds(60);
export const ORIGIN_KEEPALIVE_TIMEOUT = Duration.seconds(60);

export interface GatewayOrigin {
  readonly region: string;
  /** The regional gateway function URL (https://<id>.lambda-url.<region>.on.aws/). */
  readonly url: string;
}

export interface EdgeStackProps extends StackProps {
  readonly config: DeployConfig;
  /** One per configured region, in config order (the primary first). */
  readonly gatewayOrigins: readonly GatewayOrigin[];
}

/** The host part of a function URL, as CloudFront wants an origin's domain name. */
function urlHost(url: string): string {
  return Fn.select(2, Fn.split('/', url));
}

/** The CloudFront distribution in front of the regional gateways, and the origin secret. */
export class EdgeStack extends Stack {
  readonly distribution: Distribution;
  readonly originSecret: Secret;

  constructor(scope: Construct, id: string, props: EdgeStackProps) {
    super(scope, id, props);
    const { config, gatewayOrigins } = props;
    if (gatewayOrigins.length === 0) throw new RangeError('the edge stack needs at least one gateway origin');

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
        handler: 'index.handler',
        code: Code.fromInline(source),
        memorySize: 128,
        timeout: Duration.seconds(5),
        description: 'aigw: route each viewer to the nearest gateway region',
      });
      edgeLambdas.push({ functionVersion: selector.currentVersion, eventType: LambdaEdgeEventType.ORIGIN_REQUEST });
    }

    const custom = config.customDomain;
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
      ...(custom
        ? {
            domainNames: [custom.domainName],
            certificate: Certificate.fromCertificateArn(this, 'Certificate', custom.certificateArn),
            minimumProtocolVersion: SecurityPolicyProtocol.TLS_V1_2_2021,
          }
        : {}),
    });
    if (!custom) {
      Annotations.of(this).addWarningV2(
        'aigw:defaultCertificate',
        'No [deploy] domain_name/certificate_arn: the distribution uses the *.cloudfront.net certificate, ' +
          'whose viewer TLS policy AWS fixes; set a custom domain to enforce TLSv1.2_2021.',
      );
    }

    new CfnOutput(this, 'GatewayEndpoint', {
      value: `https://${custom ? custom.domainName : this.distribution.distributionDomainName}/v1`,
      description: 'OpenAI-compatible base URL',
    });
    new CfnOutput(this, 'DistributionId', { value: this.distribution.distributionId });
  }
}
