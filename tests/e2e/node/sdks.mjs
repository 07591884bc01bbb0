// The official Node SDKs against the proxy: openai's Responses API (create, stream) and
// @anthropic-ai/sdk's Messages API (create, stream). Prints one JSON object.
// Usage: node sdks.mjs ROOT_URL API_KEY MODEL
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";

const [root, apiKey, model] = process.argv.slice(2);

const openai = new OpenAI({ baseURL: `${root}/v1`, apiKey, maxRetries: 0 });
const created = await openai.responses.create({ model, input: "hello from node" });
const events = [];
for await (const event of await openai.responses.create({ model, input: "stream from node", stream: true })) events.push(event);

const anthropic = new Anthropic({ baseURL: root, apiKey, maxRetries: 0 });
const message = await anthropic.messages.create({ model, max_tokens: 100, messages: [{ role: "user", content: "hello claude" }] });
const stream = anthropic.messages.stream({ model, max_tokens: 100, messages: [{ role: "user", content: "stream claude" }] });
const deltas = [];
stream.on("text", (text) => deltas.push(text));
const final = await stream.finalMessage();

console.log(JSON.stringify({
  responsesText: created.output_text,
  responsesStreamed: events.filter((e) => e.type === "response.output_text.delta").map((e) => e.delta).join(""),
  responsesLast: events.at(-1).type,
  messagesText: message.content[0].text,
  messagesStreamed: deltas.join(""),
  messagesFinal: final.content[0].text,
}));
