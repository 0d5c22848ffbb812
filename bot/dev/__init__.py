"""Everything only `promobot serve --dev` uses: console Slack, recorded GitHub, deployer, demo."""
