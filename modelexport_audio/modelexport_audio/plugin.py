"""audio hooks (skeleton): the processors arrive with the audio issue."""
