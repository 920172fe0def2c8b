// Writes a deterministic GPT-2/Qwen2-style byte-level BPE tokenizer (tokenizer.json +
// tokenizer_config.json with a ChatML template) for the demo and bench models: no corpus download.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface TokenizerWriterOptions {
  /** Total ids, specials included: 2048 for the tiny model, 32768 for the bench model. */
  vocabSize: number;
  /** Written as `model_max_length`; defaults to 32768 like Qwen2. */
  modelMaxLength?: number;
}

export interface WrittenTokenizer {
  eosTokenIds: number[];
  bosTokenId?: number;
  padTokenId?: number;
}

export const ENDOFTEXT = '<|endoftext|>';
export const IM_START = '<|im_start|>';
export const IM_END = '<|im_end|>';
const SPECIAL_TOKENS = [ENDOFTEXT, IM_START, IM_END] as const;

const MIN_VOCAB = 256 + SPECIAL_TOKENS.length;
// Qwen2.5 logits span 151,936 ids; the top-up merges reach that in a few seconds.
const MAX_VOCAB = 262144;

// Qwen2's template without its default system prompt: the system message is optional.
export const CHATML_TEMPLATE =
  "{%- for message in messages %}" +
  "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}" +
  '{%- endfor %}' +
  "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}";

// The split GPT-2's ByteLevel pre-tokenizer applies (use_regex: true); training must use the same.
const GPT2_SPLIT = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

// Original English prose, written for this file, so training needs no download.
const TRAINING_TEXT = `
The morning was quiet when the first train left the station. People stood on the platform with coffee in their hands, talking about the weather, their work and the news of the day. A small child asked her father why the sky was blue, and he told her that sunlight is made of many colors, and that the air scatters the blue light more than the red.
In the kitchen, we started with the simplest things: bread, water, salt and time. The dough rested for an hour while we cut onions, washed the green beans and set the table. When the bread came out of the oven, the whole house smelled warm and sweet. Everyone agreed that it was the best dinner of the week.
Learning a new language takes patience. You read a sentence, you say it out loud, you write it down, and then you forget it and learn it again. Over months the words become familiar, and one day you notice that you are thinking in the new language without trying. That moment is worth every hour of practice.
The city library opens at nine and closes at eight. It has a large room for children, a quiet room for study, and a small garden where people can read in the sun. The librarians are friendly and will help you find books about history, science, art, travel, music and almost anything else you could want to know.
Scientists measure the world carefully. They make a question, design an experiment, collect data and look for patterns. A good experiment can be repeated by other people in other places, and it should give the same result. When it does not, that is interesting too, because it means there is something we do not yet understand.
Our team builds software that answers questions. A request arrives, the server checks the key, reads the message, and asks the model for an answer. The model reads the prompt one token at a time and writes the answer one token at a time. We measure how long each step takes, how much memory it uses, and how much it costs, so that we can make it faster and cheaper.
On the weekend they walked along the river to the old bridge. The water was high after the rain, and the trees were bright with new leaves. They saw ducks, a heron standing very still, and a group of students painting the hills. At noon they ate sandwiches on a bench and talked about the places they would like to visit next summer.
Good writing is clear writing. Say what you mean, use short words when they work, and cut the sentences that do not help the reader. Read your text again the next day; you will find mistakes that you could not see before. Ask a friend to read it too, and listen to what they say.
The market was full of color: red tomatoes, yellow peppers, purple plums and long green cucumbers. A woman sold fresh flowers, and a man played the guitar near the fountain. Prices were written on small boards in white chalk, and people paid with coins, notes or their phones.
Mathematics is the study of numbers, shapes and patterns. Two plus two is four, three times seven is twenty one, and the angles of a triangle add up to one hundred and eighty degrees. Some problems are easy and some have waited hundreds of years for a solution, but every one of them begins with a simple question.
When the storm came, the lights went out and the wind shook the windows. We found candles in the drawer, made tea on the gas stove and played cards until late. In the morning the streets were covered with branches, but the sky was clean and the air was cold and fresh.
Health depends on simple habits: sleep enough, eat vegetables and fruit, drink water, move your body every day and spend time with people you love. None of this is new, and none of it is hard to understand, but it is hard to do every day. Small steps, repeated often, make the biggest difference.
The history of the town goes back more than a thousand years. Farmers built the first houses near the river, then came a church, a mill and a market. Later the railway brought factories and workers, and the town grew into a city. Today the old mill is a museum, and the market still opens every Saturday.
Please remember to close the door when you leave, turn off the lights, and put the keys under the blue pot by the window. If anything goes wrong, call me or send a message, and I will come back as soon as I can. Thank you for your help, and have a good day.
What is the answer? How did you find it? Why does it work? Where should we start, and when will we know that we are done? These questions are the beginning of every project, and the best teams ask them again and again.
`;

// GPT-2's reversible byte <-> printable-unicode map, so every byte string is a token string.
function bytesToUnicode(): string[] {
  const printable: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) printable.push(b);
  for (let b = 0xa1; b <= 0xac; b++) printable.push(b);
  for (let b = 0xae; b <= 0xff; b++) printable.push(b);
  const map: string[] = new Array(256);
  let extra = 0;
  for (let b = 0; b < 256; b++) {
    map[b] = printable.includes(b) ? String.fromCodePoint(b) : String.fromCodePoint(256 + extra++);
  }
  return map;
}

const BYTE_CHARS = bytesToUnicode();
const SPACE = BYTE_CHARS[0x20]; // 'Ġ'

function toByteLevel(text: string): string {
  return Array.from(new TextEncoder().encode(text), (b) => BYTE_CHARS[b]).join('');
}

class Vocab {
  readonly ids = new Map<string, number>();
  readonly merges: [string, string][] = [];

  add(token: string): void {
    this.ids.set(token, this.ids.size);
  }

  merge(left: string, right: string): void {
    if (!this.ids.has(left) || !this.ids.has(right)) {
      throw new Error(`merge of unknown tokens: ${left} + ${right}`);
    }
    this.merges.push([left, right]);
    // Two merge paths can spell the same string (a+bc, ab+c); BPE then shares the token.
    if (!this.ids.has(left + right)) this.add(left + right);
  }
}

// Classic BPE training: repeatedly merge the most frequent adjacent pair (ties broken by
// string order so the output is the same on every machine).
function trainMerges(vocab: Vocab, target: number): void {
  const wordCounts = new Map<string, number>();
  for (const piece of TRAINING_TEXT.match(GPT2_SPLIT) ?? []) {
    const word = toByteLevel(piece);
    wordCounts.set(word, (wordCounts.get(word) ?? 0) + 1);
  }
  const words = [...wordCounts].map(([word, count]) => ({ symbols: [...word], count }));

  while (vocab.ids.size < target) {
    const pairCounts = new Map<string, number>();
    for (const { symbols, count } of words) {
      for (let i = 0; i + 1 < symbols.length; i++) {
        const key = symbols[i] + ' ' + symbols[i + 1];
        pairCounts.set(key, (pairCounts.get(key) ?? 0) + count);
      }
    }
    let best: string | undefined;
    let bestCount = 1;
    for (const [key, count] of pairCounts) {
      if (count > bestCount || (count === bestCount && best !== undefined && key < best)) {
        best = key;
        bestCount = count;
      }
    }
    if (best === undefined) return;
    const [left, right] = best.split(' ');
    const merged = left + right;
    vocab.merge(left, right);
    for (const word of words) {
      const out: string[] = [];
      for (let i = 0; i < word.symbols.length; i++) {
        if (i + 1 < word.symbols.length && word.symbols[i] === left && word.symbols[i + 1] === right) {
          out.push(merged);
          i++;
        } else {
          out.push(word.symbols[i]);
        }
      }
      word.symbols = out;
    }
  }
}

// English letter weights, strictly decreasing so a child always scores below its parent.
const LETTERS = 'etaoinshrdlcumwfgypbvkjxqz';
const letterWeight = (rank: number): number => 0.13 * Math.pow(0.87, rank);
const SPACE_WEIGHT = 0.2;

interface Candidate {
  prefix: string;
  prefixScore: number;
  letterRank: number;
}

const candidateScore = (c: Candidate): number => c.prefixScore * letterWeight(c.letterRank);
const candidateToken = (c: Candidate): string => c.prefix + LETTERS[c.letterRank];

function candidateBefore(a: Candidate, b: Candidate): boolean {
  const sa = candidateScore(a);
  const sb = candidateScore(b);
  return sa !== sb ? sa > sb : candidateToken(a) < candidateToken(b);
}

// Max-heap of candidates; siblings are pushed lazily so the heap grows by one per pop.
class CandidateHeap {
  private readonly items: Candidate[] = [];

  get size(): number {
    return this.items.length;
  }

  push(c: Candidate): void {
    const items = this.items;
    items.push(c);
    let i = items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!candidateBefore(items[i], items[parent])) break;
      [items[i], items[parent]] = [items[parent], items[i]];
      i = parent;
    }
  }

  pop(): Candidate {
    const items = this.items;
    const top = items[0];
    const last = items.pop()!;
    if (items.length > 0) {
      items[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let best = i;
        if (l < items.length && candidateBefore(items[l], items[best])) best = l;
        if (r < items.length && candidateBefore(items[r], items[best])) best = r;
        if (best === i) break;
        [items[i], items[best]] = [items[best], items[i]];
        i = best;
      }
    }
    return top;
  }
}

// Tops the vocabulary up with likely letter strings ('Ġ'-prefixed or not), best first: each
// new token is an existing token plus one letter, so every merge joins two existing tokens.
function topUpMerges(vocab: Vocab, target: number): void {
  const heap = new CandidateHeap();
  heap.push({ prefix: SPACE, prefixScore: SPACE_WEIGHT, letterRank: 0 });
  for (let rank = 0; rank < LETTERS.length; rank++) {
    heap.push({ prefix: LETTERS[rank], prefixScore: letterWeight(rank), letterRank: 0 });
  }
  while (vocab.ids.size < target && heap.size > 0) {
    const c = heap.pop();
    const token = candidateToken(c);
    if (!vocab.ids.has(token)) vocab.merge(c.prefix, LETTERS[c.letterRank]);
    if (c.letterRank + 1 < LETTERS.length) heap.push({ ...c, letterRank: c.letterRank + 1 });
    heap.push({ prefix: token, prefixScore: candidateScore(c), letterRank: 0 });
  }
}

function buildVocab(baseSize: number): Vocab {
  const vocab = new Vocab();
  for (const ch of BYTE_CHARS) vocab.add(ch);
  trainMerges(vocab, baseSize);
  topUpMerges(vocab, baseSize);
  if (vocab.ids.size !== baseSize) throw new Error(`vocabulary stopped at ${vocab.ids.size} of ${baseSize}`);
  return vocab;
}

export const specialEntry = (content: string) => ({
  content,
  single_word: false,
  lstrip: false,
  rstrip: false,
  normalized: false,
  special: true,
});

/** Writes tokenizer.json and tokenizer_config.json into dir (created if needed). */
export async function writeTokenizerFiles(dir: string, opts: TokenizerWriterOptions): Promise<WrittenTokenizer> {
  const { vocabSize, modelMaxLength = 32768 } = opts;
  if (!Number.isInteger(vocabSize) || vocabSize < MIN_VOCAB || vocabSize > MAX_VOCAB) {
    throw new RangeError(`vocabSize must be an integer in [${MIN_VOCAB}, ${MAX_VOCAB}], got ${vocabSize}`);
  }
  const baseSize = vocabSize - SPECIAL_TOKENS.length;
  const vocab = buildVocab(baseSize);
  const specialIds = SPECIAL_TOKENS.map((_, i) => baseSize + i);
  const [endOfTextId, , imEndId] = specialIds;

  const tokenizerJson = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: SPECIAL_TOKENS.map((content, i) => ({ id: specialIds[i], ...specialEntry(content) })),
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
    decoder: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab: Object.fromEntries(vocab.ids),
      merges: vocab.merges,
    },
  };
  const tokenizerConfig = {
    add_bos_token: false,
    add_prefix_space: false,
    added_tokens_decoder: Object.fromEntries(
      SPECIAL_TOKENS.map((content, i) => [String(specialIds[i]), specialEntry(content)]),
    ),
    additional_special_tokens: [IM_START, IM_END],
    bos_token: null,
    chat_template: CHATML_TEMPLATE,
    clean_up_tokenization_spaces: false,
    eos_token: IM_END,
    errors: 'replace',
    model_max_length: modelMaxLength,
    pad_token: ENDOFTEXT,
    split_special_tokens: false,
    tokenizer_class: 'Qwen2Tokenizer',
    unk_token: null,
  };

  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'tokenizer.json'), JSON.stringify(tokenizerJson));
  await writeFile(join(dir, 'tokenizer_config.json'), JSON.stringify(tokenizerConfig, null, 2) + '\n');
  // Both end a turn, as in Qwen2-Instruct's generation_config.
  return { eosTokenIds: [imEndId, endOfTextId], padTokenId: endOfTextId };
}
