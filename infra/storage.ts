// How aigw's stacks keep data: the removal policy of everything holding data, private encrypted
// buckets, and the buckets that receive access logs (expired after the log retention).
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import { BlockPublicAccess, Bucket, BucketEncryption, ObjectOwnership, type BucketProps } from 'aws-cdk-lib/aws-s3';
import type { Construct } from 'constructs';
import { acknowledge } from './rule-packs.js';

/**
 * Kept when the stack is deleted or the resource replaced, but removed when the stack's *creation*
 * rolls back (CloudFormation's RetainExceptOnCreate): a plain RETAIN would leave the fixed-name
 * table and log groups behind, and the retried first deploy would fail with "already exists".
 */
export const DATA_REMOVAL_POLICY = RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE;

/** Encrypted, private, TLS 1.2+ only. */
export function privateBucketProps(): BucketProps {
  return {
    encryption: BucketEncryption.S3_MANAGED,
    blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
    enforceSSL: true,
    minimumTLSVersion: 1.2,
    removalPolicy: DATA_REMOVAL_POLICY,
  };
}

export interface LogBucketOptions {
  /**
   * CloudFront's standard logs are delivered with an object ACL, so that bucket needs ACLs
   * enabled (owner preferred); S3 server access logs are granted by bucket policy instead.
   */
  readonly aclDelivery?: boolean;
}

/** A bucket for access logs whose objects expire after `retentionDays`, like the log groups. */
export function logBucket(scope: Construct, id: string, retentionDays: number, options: LogBucketOptions = {}): Bucket {
  // privateBucketProps' S3-managed keys: neither S3 server access logs nor CloudFront standard logs
  // can use SSE-KMS without a customer key granted to the delivery service.
  const bucket = new Bucket(scope, id, {
    ...privateBucketProps(),
    objectOwnership: options.aclDelivery ? ObjectOwnership.BUCKET_OWNER_PREFERRED : ObjectOwnership.BUCKET_OWNER_ENFORCED,
    lifecycleRules: [
      { expiration: Duration.days(retentionDays), abortIncompleteMultipartUploadAfter: Duration.days(1) },
    ],
  });
  acknowledge(bucket, 'AwsSolutions-S1', 'this bucket receives access logs; logging its own access would need yet another bucket');
  return bucket;
}
