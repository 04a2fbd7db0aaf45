"""vision hooks (skeleton): the processors arrive with the vision issue."""
