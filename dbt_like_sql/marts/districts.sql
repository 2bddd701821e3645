-- One row per district: its name and Clever's sync state, so people see "Riverside Unified",
-- not a hex id. published_at is stamped by the publish itself (see publish.py).
-- demographics_shared: whether any student carries a demographic value (the roster step's parameter).
with district as ({{ district_slice(ref('stg_clever__districts'), where='clever_district_id = district_id') }}),

final as (
    select
        district_id,
        name,
        sync_state as state,
        last_sync,
        pause_start,
        pause_end,
        cast(null as timestamp with time zone) as published_at,
        {{ param('demographics_shared') }} = 'yes' as demographics_shared
    from district
)

select * from final
