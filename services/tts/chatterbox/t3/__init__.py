"""T3: the Llama (or, for Turbo, GPT-2) transformer that turns text tokens into S3
speech tokens, conditioned on a speaker embedding, prompt speech tokens and emotion."""
