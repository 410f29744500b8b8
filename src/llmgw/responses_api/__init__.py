"""OpenAI's Responses API on top of chat completions: a Responses request becomes a chat request
(`request`), and the chat answer becomes a Response object (`response`) or the Responses API's
typed stream events (`stream`). Pure translation; the routing is the chat path's own."""
