"""`datacurate review`: a local web app to triage clean's and vet's decisions by keyboard (docs/review.md)."""
