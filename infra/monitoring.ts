import { Duration } from 'aws-cdk-lib';
import {
  Alarm,
  AlarmStatusWidget,
  ComparisonOperator,
  Dashboard,
  GraphWidget,
  MathExpression,
  Metric,
  TreatMissingData,
  type IMetric,
} from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import { Topic } from 'aws-cdk-lib/aws-sns';
import { EmailSubscription } from 'aws-cdk-lib/aws-sns-subscriptions';
import { Construct } from 'constructs';
import type { DeployConfig } from './deploy-config.js';
import { acknowledge } from './rule-packs.js';
import { DIMENSION, GATEWAY_SERVICE_NAME, METRIC, METRIC_NAMESPACE, SERVICE_DIMENSION, gatewayDimensions } from '../src/telemetry/metric-names.js';

function gatewayMetric(
  name: string,
  statistic: string,
  options: { period?: Duration; region?: string; extraDimensions?: Record<string, string>; label?: string } = {},
): Metric {
  return new Metric({
    namespace: METRIC_NAMESPACE,
    metricName: name,
    dimensionsMap: gatewayDimensions(options.extraDimensions),
    statistic,
    period: options.period ?? Duration.minutes(5),
    region: options.region,
    label: options.label,
  });
}

export interface GatewayAlarmsProps {
  readonly config: DeployConfig;
}

/**
 * Budget alarms of one region, to an SNS topic there (alarm actions can't cross regions).
 *
 * CloudWatch alarms can't sum a metric over several regions either, so with N regions each one
 * alarms at threshold / N: the gateway-wide spend can't pass the threshold without at least one
 * region passing its share, so an alert is never missed (it may come early when traffic is
 * uneven). With one region the alarm is exactly the configured threshold.
 */
export class GatewayAlarms extends Construct {
  readonly topic: Topic;
  readonly dailySpend: Alarm;
  readonly keyBudgetCrossings: Alarm[];

  constructor(scope: Construct, id: string, props: GatewayAlarmsProps) {
    super(scope, id);
    const { config } = props;
    this.topic = new Topic(this, 'Topic', { displayName: 'aigw budget alarms', enforceSSL: true });
    if (config.alarmEmail) {
      this.topic.addSubscription(new EmailSubscription(config.alarmEmail));
      acknowledge(
        this.topic,
        'Serverless-SNSRedrivePolicy',
        'an e-mail that can\'t be delivered needs no queue to replay it: the alarm state stays in CloudWatch and on the dashboard',
      );
    }
    const action = new SnsAction(this.topic);

    const thresholdMicroUsd = Math.round((config.dailySpendAlarmUsd * 1_000_000) / config.regions.length);
    this.dailySpend = new Alarm(this, 'DailySpend', {
      alarmDescription:
        `aigw spend in this region over one day passed ${thresholdMicroUsd / 1_000_000} USD ` +
        `(daily_spend_alarm_usd ${config.dailySpendAlarmUsd} over ${config.regions.length} region(s))`,
      metric: gatewayMetric(METRIC.costMicroUsd, 'Sum', { period: Duration.days(1) }),
      threshold: thresholdMicroUsd,
      comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: TreatMissingData.NOT_BREACHING,
    });
    this.dailySpend.addAlarmAction(action);

    // The gateway emits one data point per key and crossing; any crossing in 5 minutes alarms.
    this.keyBudgetCrossings = config.keyBudgetAlertPercents.map((percent) => {
      const alarm = new Alarm(this, `KeyBudget${percent}Percent`, {
        alarmDescription: `an API key crossed ${percent}% of its budget (details in the gateway logs)`,
        metric: gatewayMetric(METRIC.keyBudgetThresholdCrossed, 'Sum', {
          extraDimensions: { [DIMENSION.percent]: String(percent) },
        }),
        threshold: 1,
        comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: 1,
        treatMissingData: TreatMissingData.NOT_BREACHING,
      });
      alarm.addAlarmAction(action);
      return alarm;
    });
  }

  get all(): Alarm[] {
    return [this.dailySpend, ...this.keyBudgetCrossings];
  }
}

export interface GatewayDashboardProps {
  readonly config: DeployConfig;
  /** Alarms shown in a status widget (those of the dashboard's own region). */
  readonly alarms: readonly Alarm[];
}

/** One dashboard for every region: each graph has a line per region (dashboards may cross regions). */
export class GatewayDashboard extends Construct {
  readonly dashboard: Dashboard;

  constructor(scope: Construct, id: string, props: GatewayDashboardProps) {
    super(scope, id);
    const { regions, keyBudgetAlertPercents } = props.config;
    const several = regions.length > 1;
    const perRegion = (name: string, statistic: string, label: string): IMetric[] =>
      regions.map((region) =>
        gatewayMetric(name, statistic, { region, label: several ? `${label} ${region}` : label }),
      );

    // A line per value of the metric's dimension, whatever values appear (SEARCH).
    const byDimension = (metric: string, dimension: string): IMetric[] =>
      regions.map(
        (region) =>
          new MathExpression({
            expression:
              `SEARCH('{${METRIC_NAMESPACE},${dimension},${SERVICE_DIMENSION}} ` +
              `MetricName="${metric}" ${SERVICE_DIMENSION}="${GATEWAY_SERVICE_NAME}"', 'Sum', 300)`,
            searchRegion: region,
            label: several ? region : undefined,
            period: Duration.minutes(5),
          }),
      );
    const rejectionsByReason = byDimension(METRIC.rejections, DIMENSION.reason);

    this.dashboard = new Dashboard(this, 'Dashboard', {
      dashboardName: 'aigw',
      defaultInterval: Duration.hours(24),
    });
    this.dashboard.addWidgets(
      new GraphWidget({ title: 'Requests', left: perRegion(METRIC.requests, 'Sum', 'requests'), width: 8 }),
      new GraphWidget({
        title: 'Tokens',
        left: [
          ...perRegion(METRIC.promptTokens, 'Sum', 'prompt'),
          ...perRegion(METRIC.completionTokens, 'Sum', 'completion'),
        ],
        width: 8,
      }),
      new GraphWidget({ title: 'Cost (micro-USD)', left: perRegion(METRIC.costMicroUsd, 'Sum', 'cost'), width: 8 }),
    );
    this.dashboard.addWidgets(
      new GraphWidget({
        title: 'Latency (ms)',
        left: [...perRegion(METRIC.latencyMs, 'p50', 'p50'), ...perRegion(METRIC.latencyMs, 'p99', 'p99')],
        width: 8,
      }),
      new GraphWidget({
        title: 'Time to first token (ms)',
        left: [...perRegion(METRIC.ttftMs, 'p50', 'p50'), ...perRegion(METRIC.ttftMs, 'p99', 'p99')],
        width: 8,
      }),
      new GraphWidget({ title: 'Cache hits', left: perRegion(METRIC.cacheHits, 'Sum', 'hits'), width: 8 }),
    );
    this.dashboard.addWidgets(
      new GraphWidget({ title: 'Rejections by reason', left: rejectionsByReason, width: 8 }),
      new GraphWidget({
        title: 'Key budget threshold crossings',
        left: keyBudgetAlertPercents.flatMap((percent) =>
          regions.map((region) =>
            gatewayMetric(METRIC.keyBudgetThresholdCrossed, 'Sum', {
              region,
              extraDimensions: { [DIMENSION.percent]: String(percent) },
              label: several ? `${percent}% ${region}` : `${percent}%`,
            }),
          ),
        ),
        width: 8,
      }),
      new AlarmStatusWidget({ title: 'Budget alarms', alarms: [...props.alarms], width: 8 }),
    );
    this.dashboard.addWidgets(
      new GraphWidget({ title: 'Route decisions by rule', left: byDimension(METRIC.routeDecisions, DIMENSION.routeReason), width: 8 }),
      new GraphWidget({ title: 'Fallbacks by trigger', left: byDimension(METRIC.fallbacks, DIMENSION.trigger), width: 8 }),
      new GraphWidget({ title: 'Continued replies', left: perRegion(METRIC.continuations, 'Sum', 'continued'), width: 8 }),
    );
  }
}
