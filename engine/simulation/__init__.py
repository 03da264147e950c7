"""Policy simulation (政策模拟): a pack version's real command path on a simulated clock.

``scenario`` (the ``simulation.yaml`` of a pack, pure), ``arrivals`` and ``places`` (the
reports of a period), ``runner`` (the discrete-event loop over the real services),
``report`` (the figures, folded from the simulated record with the rates' definitions) and
``history`` (scenario defaults from a district's record). ``govflow simulate`` wires them.
"""
