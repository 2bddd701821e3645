with admins as ({{ district_slice(ref('int_admins__scoped'), where='exclusion_reason is null') }}),

final as (
    select distinct
        district_id, user_id, role, school_id, first_name, last_name, email, title
    from admins
)

select * from final
