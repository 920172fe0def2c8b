// Budget alerts: which percent thresholds of a key's daily or monthly budget its spend has
// crossed, each claimed once across every gateway instance by a conditional write.
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { itemKeys, type Store } from '../store/index.js';
import type { Limits } from './limits.js';
import { type Item, unavailable } from './limits-item.js';
import type { Windows } from './windows.js';

export interface BudgetCrossing {
  period: 'day' | 'month';
  percent: number;
  spentMicros: number;
  budgetMicros: number;
}

/**
 * The budget thresholds (percent of a daily or monthly budget) this key's spend has crossed and
 * that nobody reported yet. Each crossing is claimed with a conditional write, so across all
 * instances it is reported exactly once. Costs a read, and a write per new crossing.
 */
export async function claimBudgetCrossings(
  store: Store,
  now: () => number,
  keyId: string,
  windows: Windows,
  limits: Limits,
  percents: readonly number[],
): Promise<BudgetCrossing[]> {
  const { day, month } = windows;
  const budgets = [
    { period: 'day' as const, limit: limits.budgetMicrosPerDay, spent: `spent_d_${day}`, alert: (p: number) => `alert${p}_d_${day}` },
    { period: 'month' as const, limit: limits.budgetMicrosPerMonth, spent: `spent_m_${month}`, alert: (p: number) => `alert${p}_m_${month}` },
  ].filter((b): b is typeof b & { limit: number } => b.limit !== undefined && b.limit > 0);
  if (budgets.length === 0 || percents.length === 0) return [];
  const key = itemKeys.keyLimits(keyId);
  let item: Item;
  try {
    item = (await store.client.send(new GetCommand({ TableName: store.tableName, Key: key, ConsistentRead: true }))).Item ?? {};
  } catch (error) {
    throw unavailable(error);
  }
  const crossings: BudgetCrossing[] = [];
  for (const budget of budgets) {
    const spent = typeof item[budget.spent] === 'number' ? (item[budget.spent] as number) : 0;
    for (const percent of percents) {
      if (spent * 100 < percent * budget.limit || item[budget.alert(percent)] !== undefined) continue;
      try {
        await store.client.send(
          new UpdateCommand({
            TableName: store.tableName,
            Key: key,
            UpdateExpression: 'SET #alert = :at',
            ConditionExpression: 'attribute_not_exists(#alert)',
            ExpressionAttributeNames: { '#alert': budget.alert(percent) },
            ExpressionAttributeValues: { ':at': new Date(now()).toISOString() },
          }),
        );
        crossings.push({ period: budget.period, percent, spentMicros: spent, budgetMicros: budget.limit });
      } catch (error) {
        if (!(error instanceof ConditionalCheckFailedException)) throw unavailable(error);
      }
    }
  }
  return crossings;
}
