with source as ({{ dedupe(source('clever', 'districts'), newest_first='last_sync desc nulls last') }}),  -- an id served twice keeps its newest copy

final as (
    select
        {{ clever_ids('clever_district_id', with_clever_district=false) }},
        {{ trimmed('name') }},
        nullif(trim(state), '') as sync_state,
        {{ parse_timestamp('last_sync') }} as last_sync,
        {{ parse_timestamp('pause_start') }} as pause_start,
        {{ parse_timestamp('pause_end') }} as pause_end
    from source
)

select * from final
