-- 003_list_prices.sql - list prices of mid-2024, per million tokens.
--
-- Source: shared/fixtures/prices-2024.json (copied to
-- tests/fixtures/prices-2024.json), which cites the provider pages and
-- reports behind each price in its "source" field, repeated here per row.
-- provider is the name a [provider NAME] section should carry for the row
-- to apply (e.g. [provider alibaba] with flavor = dashscope).
--
-- Rows the source lists without an effective date (prices observed later,
-- in 2025-2026, whose start is unknown) are not seeded, since a made-up
-- date would misprice every request before it:
--   zhipu glm-4-plus: 5.0/5.0 CNY per million (cached None)
--   alibaba qwen-turbo: 0.3/0.6 CNY per million (cached None)
--   alibaba qwen-max: 2.4/9.6 CNY per million (cached None)
--   baidu ernie-4.0-8k: 120.0/120.0 CNY per million (cached None)
--   moonshot moonshot-v1-8k: 12.0/12.0 CNY per million (cached None)
--   moonshot moonshot-v1-32k: 24.0/24.0 CNY per million (cached None)
--   moonshot moonshot-v1-128k: 60.0/60.0 CNY per million (cached None)
--   deepseek deepseek-chat: 0.27/1.1 USD per million (cached 0.07)
-- Set them with `tollctl price set ... --from DATE` once the date is known.

INSERT INTO prices (provider, model, currency, input, cached_input, output, effective_from, source) VALUES
    ('openai', 'gpt-4o-2024-05-13', 'USD', 5.0, NULL, 15.0, '2024-05-13 00:00:00+00', 'https://community.openai.com/t/introducing-structured-outputs/896022 (OpenAI, 2024-08-06: gpt-4o-2024-08-06 at $2.50/$10.00 saves 50% on input and 33% on output vs gpt-4o-2024-05-13, so $5/$15 is derived); https://strathweb.com/2024/10/how-gpt-4o-mini-can-be-simultaneously-20x-cheaper-and-2x-more-expensive-than-gpt-4o (third-party, input $5.00 stated). No prompt caching on this snapshot.'),
    ('openai', 'gpt-4o-2024-08-06', 'USD', 2.5, 1.25, 10.0, '2024-08-06 00:00:00+00', 'https://openai.com/index/api-prompt-caching/ (2024-10-01 table: uncached $2.50, cached $1.25, output $10.00; the cached rate applies from 2024-10-01); https://community.openai.com/t/introducing-structured-outputs/896022 (list price from 2024-08-06). Still listed this way on 2026 third-party price pages.'),
    ('openai', 'gpt-4o-mini-2024-07-18', 'USD', 0.15, 0.075, 0.6, '2024-07-18 00:00:00+00', 'https://openai.com/index/api-prompt-caching/ (uncached $0.15, cached $0.075 from 2024-10-01, output $0.60); launch post https://openai.com/index/gpt-4o-mini-advancing-cost-efficient-intelligence/'),
    ('anthropic', 'claude-3-5-sonnet-20240620', 'USD', 3.0, 0.3, 15.0, '2024-06-20 00:00:00+00', 'https://docs.anthropic.com/en/docs/about-claude/pricing (row ''Claude Sonnet 3.5 (deprecated)'': base input $3, 5-minute cache write $3.75, cache hit $0.30, output $15). The cache rates apply from the prompt-caching beta (2024-08-14, header anthropic-beta: prompt-caching-2024-07-31). The cache-WRITE rate of $3.75 is not in this schema.'),
    ('zhipu', 'glm-4', 'CNY', 100.0, NULL, 100.0, '2024-01-16 00:00:00+00', 'BigModel price table as quoted by https://wpsshop.cn/w/weixin_40725706/article/detail/836984 (GLM-4 0.1 CNY/1k tokens, billed on input+output total); same value in songquanpeng/one-api relay/billing/ratio/model.go @296ab013 (2024-07-22, third-party). effective_from = GLM-4 launch date (from memory, UNCONFIRMED); price known to be in effect in mid-2024. glm-4-0520 also 100 CNY/M per one-api (2025-02).'),
    ('zhipu', 'glm-4-flash', 'CNY', 0.1, NULL, 0.1, '2024-06-05 00:00:00+00', 'UNCONFIRMED: 0.1 CNY/M at launch (June 2024) is from memory; not found in a retrieved source.'),
    ('zhipu', 'glm-4-flash', 'CNY', 0.0, NULL, 0.0, '2024-08-27 00:00:00+00', 'Free status is confirmed by https://docs.bigmodel.cn/cn/guide/models/text/glm-4 (''免费语言模型 GLM-4-Flash'') and by one-api ratio 0 (2025-02). The 2024-08-27 start date is UNCONFIRMED.'),
    ('alibaba', 'qwen-long', 'CNY', 0.5, NULL, 2.0, '2024-05-21 00:00:00+00', 'Input 20 -> 0.5 CNY/M (-97%) on 2024-05-21: http://chengju.com/news/113979.html (36Kr repost, 2024-05-22) and https://wanbiaoku.com/new/a2d239ff106a4852b5e742ad68993f10. Output 2 CNY/M is UNCONFIRMED.'),
    ('alibaba', 'qwen-max', 'CNY', 40.0, NULL, 120.0, '2024-05-21 00:00:00+00', 'UNCONFIRMED (from memory of the 2024-05-21 cut: 0.04/0.12 CNY per 1k). The articles above confirm only that 9 models incl. Qwen-Turbo/Plus/Max were cut that day.'),
    ('alibaba', 'qwen-turbo', 'CNY', 2.0, NULL, 6.0, '2024-05-21 00:00:00+00', 'UNCONFIRMED (from memory: 0.002/0.006 CNY per 1k after 2024-05-21).'),
    ('baidu', 'ernie-speed-8k', 'CNY', 0.0, NULL, 0.0, '2024-05-21 00:00:00+00', 'Free from 2024-05-21 (ERNIE Speed and ERNIE Lite, 8K and 128K): https://finance.sina.com.cn/tech/roll/2024-05-23/doc-inaweseq7923814.shtml (Sina Tech 2024-05-23); https://wanbiaoku.com/new/a2d239ff106a4852b5e742ad68993f10'),
    ('baidu', 'ernie-lite-8k', 'CNY', 0.0, NULL, 0.0, '2024-05-21 00:00:00+00', 'Same sources as ernie-speed-8k (free from 2024-05-21).'),
    ('baichuan', 'Baichuan4', 'CNY', 100.0, NULL, 100.0, '2024-05-22 00:00:00+00', 'UNCONFIRMED (from memory of the Baichuan4 launch price). Official price page https://platform.baichuan-ai.com/prices was not retrievable here.'),
    ('01ai', 'yi-large', 'CNY', 20.0, NULL, 20.0, '2024-05-13 00:00:00+00', 'https://github.com/binary-husky/gpt_academic/issues/1799 (user report 2024-05-16: yi-large ''百万tokens 只需20rmb''; third-party). Input = output UNCONFIRMED.'),
    ('deepseek', 'deepseek-chat', 'CNY', 1.0, NULL, 2.0, '2024-05-06 00:00:00+00', 'DeepSeek-V2 launch pricing: http://chengju.com/news/113979.html (36Kr 2024-05-22: ''1元/百万Tokens(计算)、2元/百万Tokens(推理)''); one-api @296ab013 deepseek-chat 1 CNY/M input.'),
    ('deepseek', 'deepseek-chat', 'CNY', 1.0, 0.1, 2.0, '2024-08-02 00:00:00+00', 'Context caching on disk launched 2024-08-02 (https://api-docs.deepseek.com/news/news0802; LiteLLM issue #5017 shows the usage fields that day). The cache-hit price of 0.1 CNY/M is inferred from the USD figure $0.014 (cited from news0802 in cline/cline PR #815); the CNY number itself is UNCONFIRMED.'),
    ('deepseek', 'deepseek-chat', 'USD', 0.14, 0.014, 0.28, '2024-08-02 00:00:00+00', 'https://github.com/cline/cline/pull/815 (2024-11: inputPrice 0.14, outputPrice 0.28, cacheReadsPrice 0.014 USD/M, citing https://api-docs.deepseek.com/news/news0802)');
