// Changing aliases, as the CLI does it: read, compute the next state, write it conditionally. Kept
// apart from AliasStore because creating an alias is a transaction (the alias and the index of
// names), which the gateway function never issues and is not granted.
import { TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import { TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { itemKeys, type Store } from '../store/index.js';
import type { AliasRecord } from './aliases.js';
import { conflict, type AliasStore } from './alias-store.js';

/** A new alias, joining the index of names in the same transaction; fails if it exists already. */
export async function createAlias(store: Store, record: AliasRecord): Promise<void> {
  try {
    await store.client.send(
      new TransactWriteCommand({
        TransactItems: [
          { Put: { TableName: store.tableName, Item: { ...itemKeys.alias(record.name), ...record }, ConditionExpression: 'attribute_not_exists(pk)' } },
          {
            Update: {
              TableName: store.tableName,
              Key: itemKeys.aliasIndex(),
              UpdateExpression: 'ADD #names :name',
              ExpressionAttributeNames: { '#names': 'names' },
              ExpressionAttributeValues: { ':name': new Set([record.name]) },
            },
          },
        ],
      }),
    );
  } catch (error) {
    if (error instanceof TransactionCanceledException) throw conflict(record.name);
    throw error;
  }
}

/** Reads the alias, computes its next state with `change`, and writes it: one conditional write. */
export async function changeAlias(store: Store, aliases: AliasStore, name: string, change: (current: AliasRecord | undefined) => AliasRecord): Promise<AliasRecord> {
  const current = await aliases.read(name);
  const updated = change(current);
  if (current) await aliases.write(updated, current.revision);
  else await createAlias(store, updated);
  return updated;
}
