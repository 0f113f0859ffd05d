from hypothesis import Phase, settings

# `pytest --hypothesis-profile=no-shrink` reports the first failing example at once.
settings.register_profile("no-shrink", phases=[Phase.explicit, Phase.reuse, Phase.generate])
