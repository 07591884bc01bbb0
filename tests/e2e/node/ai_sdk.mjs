// The Vercel AI SDK's default OpenAI provider (the Responses API) against the proxy:
// generateText, streamText and a tool call the SDK runs. Prints one JSON object.
// Usage: node ai_sdk.mjs BASE_URL API_KEY MODEL
import { createOpenAI } from "@ai-sdk/openai";
import { generateText, jsonSchema, stepCountIs, streamText, tool } from "ai";

const [baseURL, apiKey, model] = process.argv.slice(2);
const openai = createOpenAI({ baseURL, apiKey });

const generated = await generateText({ model: openai(model), prompt: "hello from ai sdk" });

const streamed = streamText({ model: openai(model), prompt: "stream from ai sdk" });
const deltas = [];
for await (const delta of streamed.textStream) deltas.push(delta);

const cities = [];
const getWeather = tool({
  description: "Current weather",
  inputSchema: jsonSchema({ type: "object", properties: { city: { type: "string" } }, required: ["city"] }),
  execute: async ({ city }) => { cities.push(city); return "sunny"; },
});
const withTool = await generateText({
  model: openai(model), prompt: "What's the weather in Paris?",
  tools: { get_weather: getWeather }, stopWhen: stepCountIs(3),
});

console.log(JSON.stringify({
  generated: generated.text,
  streamed: deltas.join(""),
  streamedFinish: await streamed.finishReason,
  toolCities: cities,
  toolSteps: withTool.steps.length,
  toolText: withTool.text,
}));
