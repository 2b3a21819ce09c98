"""The GE2E speaker encoder family: Resemblyzer's and HarmonySpeech V1's weights."""
