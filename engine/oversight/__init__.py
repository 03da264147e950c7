"""Supervise and assess (监督考核): rates, rankings, the board and scorecards from the record."""
