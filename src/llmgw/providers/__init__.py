"""Provider adapters: one per wire format, pure translation between OpenAI's format and theirs."""
