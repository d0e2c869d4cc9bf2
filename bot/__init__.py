"""The Liaison bot: commands in the patients' liaison rooms."""
