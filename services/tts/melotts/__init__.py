"""MeloTTS (family melotts): VITS2 with tone, language and BERT embeddings, and the
reference's per-language text front-ends."""
