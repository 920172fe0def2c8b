// A Llama-3-style variant of the builder's tokenizer: a BOS token that the post-processor prepends
// (TemplateProcessing, as Llama 2/3 tokenizer.json files do) and two end-of-turn ids.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TokenizerWriterOptions, WrittenTokenizer } from './tokenizer-writer.js';
import { CHATML_TEMPLATE, specialEntry, writeTokenizerFiles } from './tokenizer-writer.js';

export const BEGIN_OF_TEXT = '<|begin_of_text|>';
export const EOT_ID = '<|eot_id|>';

// ChatML turns after the BOS, as templates that start with {{ bos_token }} do.
const LLAMA3_TEMPLATE = `{{- bos_token }}${CHATML_TEMPLATE}`;

const special = (id: number, content: string) => ({ id, ...specialEntry(content) });

/** The byte-level BPE of writeTokenizerFiles plus <|begin_of_text|> (prepended) and <|eot_id|>, in `vocabSize` ids. */
export async function writeLlama3StyleTokenizerFiles(dir: string, opts: TokenizerWriterOptions): Promise<WrittenTokenizer> {
  const base = await writeTokenizerFiles(dir, { ...opts, vocabSize: opts.vocabSize - 2 });
  const bosId = opts.vocabSize - 2;
  const eotId = opts.vocabSize - 1;
  const tokenizerFile = join(dir, 'tokenizer.json');
  const tokenizer = JSON.parse(await readFile(tokenizerFile, 'utf8'));
  tokenizer.added_tokens.push(special(bosId, BEGIN_OF_TEXT), special(eotId, EOT_ID));
  tokenizer.post_processor = {
    type: 'Sequence',
    processors: [
      { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true },
      {
        type: 'TemplateProcessing',
        single: [{ SpecialToken: { id: BEGIN_OF_TEXT, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
        pair: [
          { SpecialToken: { id: BEGIN_OF_TEXT, type_id: 0 } },
          { Sequence: { id: 'A', type_id: 0 } },
          { SpecialToken: { id: BEGIN_OF_TEXT, type_id: 1 } },
          { Sequence: { id: 'B', type_id: 1 } },
        ],
        special_tokens: { [BEGIN_OF_TEXT]: { id: BEGIN_OF_TEXT, ids: [bosId], tokens: [BEGIN_OF_TEXT] } },
      },
    ],
  };
  await writeFile(tokenizerFile, JSON.stringify(tokenizer));

  const configFile = join(dir, 'tokenizer_config.json');
  const config = JSON.parse(await readFile(configFile, 'utf8'));
  config.added_tokens_decoder[String(bosId)] = special(bosId, BEGIN_OF_TEXT);
  config.added_tokens_decoder[String(eotId)] = special(eotId, EOT_ID);
  Object.assign(config, {
    bos_token: BEGIN_OF_TEXT,
    eos_token: EOT_ID,
    chat_template: LLAMA3_TEMPLATE,
    tokenizer_class: 'PreTrainedTokenizerFast',
    additional_special_tokens: [],
  });
  delete config.add_bos_token;
  await writeFile(configFile, `${JSON.stringify(config, null, 2)}\n`);
  const endOfText = base.padTokenId ?? base.eosTokenIds.at(-1)!;
  // Llama 3 Instruct's generation_config: <|end_of_text|> and <|eot_id|> both end a turn.
  return { bosTokenId: bosId, eosTokenIds: [endOfText, eotId], padTokenId: endOfText };
}
